"""Errors where users look: a rule script reports bad input once, as its message, in the rule's
log file and on stderr, and exits 1; a bug keeps its traceback, in the log too."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake_runner import snakemake
from test_bad_inputs import big_row3, kuairec_zip

from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.io import run_rule

ROOT = Path(__file__).resolve().parents[1]


def rule(tmp_path, main):
    """Run ``main`` as a rule script would; return (exit code, stderr, log text)."""
    smk = SimpleNamespace(log=[str(tmp_path / "logs/rule.log")], input=SimpleNamespace())
    with pytest.raises(SystemExit) as exit_info:
        run_rule(main, smk)
    return exit_info.value.code, Path(smk.log[0]).read_text()


def test_bad_input_is_one_clear_message_without_the_library_traceback(tmp_path, capfd):
    archive = kuairec_zip(tmp_path / "KuaiRec.zip", big_matrix_csv=big_row3("x2,10,1.0,2.0"))
    code, log = rule(tmp_path, lambda smk: preprocess_kuairec(archive))
    err = capfd.readouterr().err
    message = "column 'user_id' row 3 (file line 4): cannot read 'x2' as Int64"
    assert code == 1
    for text in (log, err):
        assert text.count(message) == 1, text
        assert "Traceback" not in text and "ignore_errors" not in text  # no polars chain
        assert "ERROR" in text
    assert "reading KuaiRec 2.0/data/big_matrix.csv" in log  # the library's progress lines too


def test_a_bug_keeps_its_traceback_in_the_log(tmp_path, capfd):
    def main(smk):
        raise RuntimeError("something broke")

    code, log = rule(tmp_path, main)
    err = capfd.readouterr().err
    assert code == 1
    for text in (log, err):
        assert "Traceback" in text and "RuntimeError: something broke" in text
        assert "a bug, not bad input" in text


@pytest.mark.slow
def test_the_rule_log_snakemake_points_to_holds_the_error(tmp_path):
    """Through Snakemake: preprocessing a generated archive with a threshold no watch reaches."""
    config = yaml.safe_load((ROOT / "configs/test.yaml").read_text())
    config["datasets"]["tiny"]["preprocess"] = {"positive_threshold": 1.0e6}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    target = "results/tiny/data/stats.json"
    args = (target, "--cores", "1", "--configfile", str(path))
    proc = snakemake(tmp_path, *args, check=False, timeout=600)
    assert proc.returncode != 0
    log = (tmp_path / "results/tiny/logs/preprocess_kuairec.log").read_text()
    message = "no train positive: no row of KuaiRec 2.0/data/big_matrix.csv"
    assert log.count(message) == 1 and "Traceback" not in log
    assert message in proc.stderr + proc.stdout
    assert "results/tiny/logs/preprocess_kuairec.log" in proc.stderr + proc.stdout
    assert not (tmp_path / target).exists()
