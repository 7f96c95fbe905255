"""Rule synthesize_events: SoundCloud-shaped event logs with planted structure."""

from pathlib import Path

from mp2v4rec.datasets.synthetic_events import write_synthetic_events
from mp2v4rec.io import script_logger


def main(smk):
    log = script_logger(smk.log[0], "synthesize_events")
    counts = write_synthetic_events(Path(smk.output[0]).parent, **smk.params.synthetic)
    log.info("wrote %s: %s", Path(smk.output[0]).parent, counts)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
