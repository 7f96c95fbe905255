"""Rule preprocess_kuairec: the study's train/valid/test protocol on a KuaiRec archive."""

from pathlib import Path

from mp2v4rec.datasets.kuairec import preprocess_kuairec
from mp2v4rec.io import script_logger


def main(smk):
    log = script_logger(smk.log[0], "preprocess_kuairec")
    prepared = preprocess_kuairec(smk.input.archive, **smk.params.preprocess, log=log)
    prepared.write(Path(smk.output.train).parent)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
