"""The workflow used as a module of another workflow: a host Snakefile in a temporary
folder says ``module cohort_connectome: snakefile: <ours>; config: config`` and
``use rule * from cohort_connectome``; on the demo cohort its outputs are a direct
run's, byte for byte (the file's paths go through the Snakefile's own folder, not the
host's, and the host's config gets the same defaults as ours: the schema's, which
equal config/config.yaml's, and config/demo.yaml on the demo)."""

import os
import subprocess

import pytest

from conftest import REPO_ROOT, SNAKEMAKE, snakemake, tree_digest
from test_workflow import job_counts

pytestmark = pytest.mark.workflow

OVERLAY = "cohort:\n  demo:\n    n_subjects: 2\nfigures:\n  qc: false\n"

HOST = f"""\
configfile: "config.yaml"


module cohort_connectome:
    snakefile:
        "{REPO_ROOT / 'Snakefile'}"
    config:
        config


use rule * from cohort_connectome
"""


def run_host(host, overlay, *args):
    """A host workflow in ``host`` with ``overlay`` as its config.yaml, run."""
    host.mkdir()
    (host / "Snakefile").write_text(HOST)
    (host / "config.yaml").write_text(overlay)
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--workflow-profile", str(REPO_ROOT / "profiles" / "default"),
         *args], cwd=host, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc


def test_host_workflow_using_ours_as_a_module(tmp_path):
    host = tmp_path / "host"
    run_host(host, OVERLAY)

    (tmp_path / "overlay.yaml").write_text(OVERLAY)
    snakemake(tmp_path / "direct", "--configfile", str(tmp_path / "overlay.yaml"))
    hosted, direct = tree_digest(host), tree_digest(tmp_path / "direct")
    assert any("compare-group" in path for path in direct)  # the demo's comparison
    assert any("meas-tangent" in path for path in direct)
    assert hosted == direct


def test_host_config_is_what_the_user_gives(tmp_path):
    """The host's config is what its user gives: on the demo cohort, its group.compare
    (null) and its kinds win over the demo's (config/demo.yaml) as they do over a
    --configfile's; the same jobs as a direct run (dry runs)."""
    overlay = OVERLAY + "connectivity:\n  kinds: [correlation]\ngroup:\n  compare: null\n"
    hosted = run_host(tmp_path / "host", overlay, "-n")
    (tmp_path / "overlay.yaml").write_text(overlay)
    direct = snakemake(tmp_path / "direct", "-n", "--configfile", str(tmp_path / "overlay.yaml"))
    counts = job_counts(direct.stdout)
    assert "compare_groups" not in counts and counts["plot_group_connectomes"] == 1
    assert job_counts(hosted.stdout) == counts
