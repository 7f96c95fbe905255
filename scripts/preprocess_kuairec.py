"""Rule preprocess_kuairec: the study's train/valid/test protocol on a KuaiRec archive."""

from pathlib import Path

from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.io import run_rule


def main(smk):
    prepared = preprocess_kuairec(smk.input.archive, **smk.params.preprocess)
    prepared.write(Path(smk.output.train).parent, require_held_out=True)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
