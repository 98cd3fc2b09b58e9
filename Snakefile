# cohort_connectome: resting-state fMRI runs -> region signals -> connectomes.
#
#   common.smk   config checks, the cohort table, input functions, final outputs
#   sources.smk  simulate_demo_atlas, simulate_demo_run      (the embedded demo cohort)
#                fetch_msdl, fetch_adhd_metadata, fetch_adhd_subject,
#                adhd_participants, adhd_sidecar             (MSDL + ADHD-200, pooch)
#                bids_participants                           (an fMRIPrep cohort)
#   extraction.smk  resample_atlas (per voxel grid) -> extract_timeseries  (per run)
#   subject.smk  clean_timeseries [-> combine_runs] -> estimate_connectomes
#                [-> plot_subject_connectomes]                       (per run)
#   group.smk    aggregate_connectomes (+ tangent, group sparse) -> plot_group_connectomes,
#                compare_groups
#   qc.smk       plot_subject_qc (per run), qc_fc (after aggregate_connectomes)
#   resources.smk  mem_mb / runtime per job (for SLURM)
#
# Run from the repository root:  snakemake --cores 2 [--configfile my.yaml]
import os
import sys

from snakemake.utils import min_version

min_version("9.0")


# This file's folder: workflow.basedir is the host's when another workflow uses
# this one as a module (`module ...: snakefile: <this file>`), and source_path()
# a copy of one file in Snakemake's source cache.
WORKFLOW_ROOT = os.path.abspath(workflow.current_basedir.get_path_or_uri(secret_free=False))


configfile: os.path.join(WORKFLOW_ROOT, "config", "config.yaml")


# The package lives beside this file: importable here, in the run_in_process
# jobs, and in every script: job, whichever environment runs it (this venv, a
# conda env, a cluster node): Snakemake's script preamble puts this process'
# sys.path on the script's, and a cluster job's snakemake reads this file again.
sys.path.insert(0, WORKFLOW_ROOT)


# Snakemake runs jobs side by side, one core each (no rule asks for threads):
# BLAS threads beyond that make small factorizations several times slower on a
# busy machine (measured: the maps' pseudo-inverse takes 0.06 s on 1 thread,
# 0.6-1.1 s on 2). Jobs inherit these; a value already set is kept.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    os.environ.setdefault(_var, "1")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/extraction.smk"
include: "workflow/rules/subject.smk"
include: "workflow/rules/group.smk"
include: "workflow/rules/qc.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


onsuccess:
    print(summary())
