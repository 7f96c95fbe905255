# `make demo` and `make test` set everything up on a fresh machine (a .venv with the package).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= all

.PHONY: demo test all lint report realdata clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## the whole DAG on embedded synthetic data, no network
	$(BIN)/snakemake all --cores $(CORES) --configfile configs/demo.yaml

test: $(STAMP)  ## unit, DAG and end-to-end tests
	$(BIN)/python -m pytest

all: $(STAMP)  ## the study's KuaiRec setup (downloads KuaiRec, 430 MB)
	$(BIN)/snakemake --cores $(CORES) all

report: $(STAMP)  ## the demo's HTML report (after make demo): results/report.html
	$(BIN)/snakemake all --configfile configs/demo.yaml --report results/report.html

realdata: $(STAMP)  ## the pre-registered real-data verdict on ../shared/data (resumable; hours on 2 cores)
	$(BIN)/python benchmarks/realdata.py

lint: $(STAMP)
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/ruff format --check src scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean-demo:
	rm -rf results/synthetic resources/synthetic
