# Sources of data. For now: the embedded demo cohort, simulated from one seed
# (no download). The pooch fetchers of the MSDL atlas and ADHD-200 runs go here.


rule simulate_demo_atlas:
    output:
        maps=f"{DEMO_ROOT}/atlas/atlas-demo_maps.nii.gz",
        labels=f"{DEMO_ROOT}/atlas/atlas-demo_labels.tsv",
        truth=expand(f"{DEMO_ROOT}/truth/group-{{group}}_precision.tsv", group=GROUPS),
        participants=f"{DEMO_ROOT}/participants.tsv",
    log:
        "logs/simulate_demo_atlas/demo.log",
    benchmark:
        "benchmarks/simulate_demo_atlas/demo.tsv"
    params:
        n_subjects=config["cohort"]["demo"]["n_subjects"],
        seed=config["cohort"]["demo"]["seed"],
        groups=list(GROUPS),
        demo_root=DEMO_ROOT,
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/simulate_demo_atlas.py"


rule simulate_demo_run:
    input:
        truth=lambda w: f"{DEMO_ROOT}/truth/group-{COHORT.loc[w.subject, 'group']}_precision.tsv",
    output:
        run=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_bold.nii.gz",
        confounds=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_desc-confounds_timeseries.tsv",
        signals=f"{DEMO_ROOT}/{{subject}}/func/{{subject}}_task-rest_desc-true_timeseries.tsv",
    log:
        "logs/simulate_demo_run/{subject}.log",
    benchmark:
        "benchmarks/simulate_demo_run/{subject}.tsv"
    params:
        n_subjects=config["cohort"]["demo"]["n_subjects"],
        seed=config["cohort"]["demo"]["seed"],
    conda:
        "../../envs/numerics.yaml"
    script:
        "../../scripts/simulate_demo_run.py"
