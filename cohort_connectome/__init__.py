"""cohort_connectome: the numeric core of the cohort connectome workflow.

Pure functions on arrays and paths; the Snakemake rules in ``workflow/`` call
them through the thin adapters in ``scripts/``.  nilearn 0.13.1 is the oracle
these functions are tested against, never a runtime dependency.
"""

__version__ = "0.1.0"
