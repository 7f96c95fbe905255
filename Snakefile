# mp2v4rec: metapath2vec recommendations (MP2V, R-MP2V) against W2V and reference baselines.
# `snakemake --cores 16 all` runs config.yaml (the study's KuaiRec setup);
# `snakemake all --cores 2 --configfile configs/demo.yaml` runs the embedded synthetic demo.
from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default; a --configfile replaces it rather than merging into it
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/walks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/serve.smk"


# small summaries and figures run where snakemake runs, not as cluster jobs
localrules:
    all,
    evaluated_users,
    search,
    walk_corpus,
    merge_recs,
    metrics_table,
    summary_table,
    ablation_table,
    search_select,
    search_report,
    plot_metrics_by_k,
    plot_metrics_by_protocol,
    plot_pca,
    plot_beyond_accuracy,
    plot_training_curves,
    plot_seeded,


rule all:
    default_target: True
    input:
        all_targets(),


rule search:
    input:
        expand(f"{R}/tables/search_best.tsv", dataset=list(DATASETS)),
