"""Rule download_kuairec: fetch (or take the user's local copy of) KuaiRec.zip, verified."""

import logging

from mp2v4rec.download import fetch_archive
from mp2v4rec.io import run_rule

log = logging.getLogger("mp2v4rec.rules")


def main(smk):
    d = smk.params.download
    fetch_archive(
        d["urls"],
        smk.output[0],
        d["size"],
        d["md5"],
        local_path=smk.params.archive,
        retries=d["retries"],
        timeout=d["timeout"],
    )
    log.info("verified %s", smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821
