"""Rule preprocess_events: scored, filtered and split event logs in the prepared contract."""

from pathlib import Path

from mp2v4rec.datasets.events import preprocess_events
from mp2v4rec.io import run_rule

INPUT_NAMES = {
    "events": "events",
    "follows": "follows",
    "items": "item_meta",
    "eval_events": "eval_events",
}  # table -> rule input ("items" is reserved)


def main(smk):
    tables = {}
    for table, name in INPUT_NAMES.items():
        if name in smk.input.keys():
            files = smk.input[name]
            tables[table] = [files] if isinstance(files, str) else list(files)
    prepared = preprocess_events(**tables, columns=smk.params.columns, **smk.params.preprocess)
    prepared.write(Path(smk.output.train).parent, require_held_out=True)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
