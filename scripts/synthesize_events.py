"""Rule synthesize_events: SoundCloud-shaped event logs with planted structure."""

import logging
from pathlib import Path

from mp2v4rec.datasets.synthetic_events import write_synthetic_events
from mp2v4rec.io import run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    counts = write_synthetic_events(Path(smk.output[0]).parent, **smk.params.synthetic)
    log.info("wrote %s: %s", Path(smk.output[0]).parent, counts)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
