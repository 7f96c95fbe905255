# mp2v4rec: metapath2vec recommendations (MP2V, R-MP2V) against W2V and reference baselines.
# `snakemake --cores 16 all` runs config.yaml (the study's KuaiRec setup);
# `snakemake --cores 2 --configfile configs/demo.yaml all` runs the embedded synthetic demo.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default; a --configfile replaces it rather than merging into it
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/walks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule search:
    input:
        expand(f"{R}/tables/search_best.tsv", dataset=list(DATASETS)),
