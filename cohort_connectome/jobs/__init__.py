"""One function per workflow rule: read the inputs, call the numerics, write the outputs.

The modules follow the rule files, so that a rule's code is found by its
file's name; the Snakemake scripts in ``scripts/`` only unpack
``snakemake.input``, ``snakemake.output`` and ``snakemake.params`` into these
functions, inside `runtime.job_log`.  A job function reads its inputs, calls
the core modules (the numerics, the QC records) and writes its outputs, so
that every rule is testable without Snakemake.

``runtime``
    `job_log` (a job's log, its one-line error on bad input) and
    `excluded_on_bad_input` (``cohort.on_bad_input: exclude``).
``sources``
    sources.smk: simulate_demo_atlas, simulate_demo_run,
    adhd_participants, adhd_sidecar, bids_participants (the downloads are
    `cohort_connectome.fetch`'s).
``extraction``
    extraction.smk: resample_atlas, extract_timeseries (the jobs that read
    the images, each in its own process).
``subject``
    subject.smk: clean_timeseries, combine_runs, estimate_connectomes.
``group``
    group.smk: aggregate_connectomes, compare_groups.
``figures``
    plot_subject_connectomes (subject.smk) and plot_group_connectomes
    (group.smk): `plot_connectomes`.
``qc``
    qc.smk: plot_subject_qc, qc_fc.

Nothing is imported here: import the sub-module of the rule.
"""
