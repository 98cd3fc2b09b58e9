"""The workflow used as a Snakemake module by another workflow.

A host Snakefile in a temporary folder loads ours with ``module`` (through the
catalog's entry point, ``workflow/Snakefile``), passes it a config mapping of its
own and ``use rule * from`` it; its outputs must equal, byte for byte, a direct
run's with that mapping as a ``--configfile`` (paths go through our Snakefile's
own folder, not the host's; the mapping is merged onto config/config.yaml as a
--configfile is, and config/demo.yaml applies on the demo cohort under it).
"""

import os
import subprocess

import pytest

from conftest import REPO_ROOT, SNAKEMAKE, snakemake, tree_digest
from test_workflow import job_counts

pytestmark = pytest.mark.workflow

OVERLAY = "cohort:\n  source: demo\n  demo:\n    n_subjects: 4\n"


def host_snakefile(config="config", prefix=None):
    """A host workflow's Snakefile using ours as a module."""
    text = f'''configfile: "config.yaml"


module connectome:
    snakefile:
        "{REPO_ROOT / "workflow" / "Snakefile"}"
    config:
        {config}


use rule * from connectome{f" as {prefix}*" if prefix else ""}
'''
    if prefix:  # the host's own target: our rule all under its new name
        text += f'''

rule host_all:
    default_target: True
    input:
        rules.{prefix}all.input,
'''
    return text


def run_host(host, snakefile, config_yaml, *args):
    """The host workflow in ``host`` (created), run with our default profile."""
    host.mkdir()
    (host / "Snakefile").write_text(snakefile)
    (host / "config.yaml").write_text(config_yaml)
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--workflow-profile", str(REPO_ROOT / "profiles" / "default"),
         *args], cwd=host, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return proc


def test_used_as_a_module_gives_a_direct_runs_outputs(tmp_path):
    """Our config nested in the host's (``config["connectome"]``), our rules under
    a prefix: the same bytes as a direct run, in-process rules included."""
    nested = "connectome:\n" + "".join(f"  {line}\n" for line in OVERLAY.splitlines())
    proc = run_host(tmp_path / "host", host_snakefile('config["connectome"]', "connectome_"),
                    nested)
    (tmp_path / "overlay.yaml").write_text(OVERLAY)
    snakemake(tmp_path / "direct", "--configfile", str(tmp_path / "overlay.yaml"))

    hosted, direct = tree_digest(tmp_path / "host"), tree_digest(tmp_path / "direct")
    assert len(hosted) > 30
    assert any("compare-group" in path for path in direct)  # the demo's comparison
    assert any("meas-tangent" in path for path in direct)
    assert hosted == direct
    for rule in ("connectome_extract_timeseries", "connectome_clean_timeseries",
                 "connectome_aggregate_connectomes"):
        assert f"rule {rule}:" in proc.stdout + proc.stderr


def test_host_config_is_what_the_user_gives(tmp_path):
    """The host's config is what its user gives: on the demo cohort, its
    group.compare (null) and its kinds win over the demo's (config/demo.yaml) as
    they do over a --configfile's; the same jobs as a direct run (dry runs)."""
    overlay = OVERLAY + "connectivity:\n  kinds: [correlation]\ngroup:\n  compare: null\n"
    hosted = run_host(tmp_path / "host", host_snakefile(), overlay, "-n")
    (tmp_path / "overlay.yaml").write_text(overlay)
    direct = snakemake(tmp_path / "direct", "-n", "--configfile", str(tmp_path / "overlay.yaml"))
    counts = job_counts(direct.stdout)
    assert "compare_groups" not in counts and counts["plot_group_connectomes"] == 1
    # through workflow/Snakefile, the default target is its rule all_results
    counts["all_results"] = counts.pop("all")
    assert job_counts(hosted.stdout) == counts


def test_catalog_standardized_usage_files():
    """What the Snakemake workflow catalog looks for: workflow/Snakefile (ours,
    included), config/README.md, and .snakemake-workflow-catalog.yml with the
    usage keys it reads."""
    import yaml

    entry = (REPO_ROOT / "workflow" / "Snakefile").read_text()
    assert [line for line in entry.splitlines() if line and not line.startswith("#")] == [
        'include: "../Snakefile"', "rule all_results:", "    default_target: True",
        "    input:", "        rules.all.input,"]
    assert (REPO_ROOT / "config" / "README.md").is_file()
    usage = yaml.safe_load((REPO_ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["report"] is True and usage["software-stack-deployment"]["conda"] is True
