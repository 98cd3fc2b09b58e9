# cohort_connectome: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: demo test lint dryrun report bench clean-results help

help:
	@echo "make demo    create $(VENV) if needed, then run the whole workflow on the embedded demo cohort"
	@echo "make test    create $(VENV) if needed, then make lint and run the test suite (nilearn 0.13.1 is the oracle)"
	@echo "make lint    snakemake --lint (fails on any lint) and snakefmt --check on the workflow"
	@echo "make dryrun  show the jobs snakemake would run"
	@echo "make report  write results/report.html (snakemake report) after a run"
	@echo "make bench   benchmark against nilearn and a nibabel load, then a DiFuMo-sized atlas and"
	@echo "             four atlases through the workflow (benchmarks/results.md; ~35 min on 2 cores)"
	@echo "             BENCH_NILEARN=1: also nilearn's NiftiMapsMasker on the DiFuMo-sized atlas,"
	@echo "             once (5-8 min, ~18 GiB of memory)"
	@echo "make test-slurm  start a single-node SLURM, run the demo through profiles/slurm"
	@echo "make test-browser  open the demo's report in headless Chromium (installs Debian's chromium)"

# The venv is (re)built when missing or when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,fast]"
	@touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

dryrun: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) -n

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html

BENCH_NILEARN ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/atlas_scale.py --repeats 3 $(if $(BENCH_NILEARN),--nilearn)

# snakemake --lint exits non-zero when it reports a lint; snakefmt --check when a
# file would be reformatted (Snakefile, workflow/rules/*.smk; [tool.snakefmt]).
lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

test: lint
	$(BIN)/python -m pytest

# The demo on a real single-node SLURM started here (root; installs slurm-wlm and
# munge with apt-get when missing), compared with a local run: tests/slurm/run_demo.sh.
.PHONY: test-slurm
SLURM_STAMP := $(VENV)/.installed-slurm
$(SLURM_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[slurm]"
	@touch $@

test-slurm: $(SLURM_STAMP)
	$(BIN)/python -m pytest -q tests/test_slurm_profile.py
	BIN=$(BIN) tests/slurm/run_demo.sh

# The demo's report in headless Chromium (root; installs Debian's chromium with
# apt-get when missing); without chromium, make test skips that test and says why.
.PHONY: test-browser
test-browser: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	$(BIN)/python -m pytest -q tests/test_group_workflow.py -k browser

clean-results:
	rm -rf results work logs resources/demo .snakemake benchmarks/*/
