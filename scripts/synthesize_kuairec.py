"""Rule synthesize_kuairec: a KuaiRec-format archive with planted structure."""

import logging

from mp2v4rec.datasets.synthetic import write_synthetic_kuairec
from mp2v4rec.io import run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    counts = write_synthetic_kuairec(smk.output[0], **smk.params.synthetic)
    log.info("wrote %s: %s", smk.output[0], counts)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
