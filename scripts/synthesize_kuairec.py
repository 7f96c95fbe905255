"""Rule synthesize_kuairec: a KuaiRec-format archive with planted structure."""

from mp2v4rec.datasets.synthetic import write_synthetic_kuairec
from mp2v4rec.io import script_logger


def main(smk):
    log = script_logger(smk.log[0], "synthesize_kuairec")
    counts = write_synthetic_kuairec(smk.output[0], **smk.params.synthetic)
    log.info("wrote %s: %s", smk.output[0], counts)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
