"""Rule download_kuairec: fetch (or take the user's local copy of) KuaiRec.zip, verified."""

from mp2v4rec.download import fetch_archive
from mp2v4rec.io import script_logger


def main(smk):
    log = script_logger(smk.log[0], "download_kuairec")
    d = smk.params.download
    fetch_archive(
        d["urls"],
        smk.output[0],
        d["size"],
        d["md5"],
        local_path=smk.params.archive,
        retries=d["retries"],
        timeout=d["timeout"],
        log=log,
    )
    log.info("verified %s", smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821
