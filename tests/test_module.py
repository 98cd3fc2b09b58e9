"""The workflow used as a Snakemake module by another workflow.

A tiny host workflow in a temporary folder loads ours with ``module`` (the
catalog's entry point, ``workflow/Snakefile``), passes it a config mapping of its
own, and ``use rule * from``; its outputs must equal a direct run's with that
mapping as a ``--configfile``.
"""

import hashlib

import pytest

from conftest import REPO_ROOT, SNAKEMAKE, snakemake

pytestmark = pytest.mark.workflow

OVERLAY = "cohort:\n  source: demo\n  demo:\n    n_subjects: 4\n"

HOST = f'''configfile: "config.yaml"


module connectome:
    snakefile:
        "{REPO_ROOT / "workflow" / "Snakefile"}"
    config:
        config["connectome"]


use rule * from connectome as connectome_*


rule all:
    default_target: True
    input:
        rules.connectome_all.input,
'''


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_used_as_a_module_gives_a_direct_runs_outputs(tmp_path):
    import subprocess

    host = tmp_path / "host"
    host.mkdir()
    (host / "Snakefile").write_text(HOST)
    (host / "config.yaml").write_text("connectome:\n" + "".join(
        f"  {line}\n" for line in OVERLAY.splitlines()))
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2"], cwd=host, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    direct = tmp_path / "direct"
    direct.mkdir()
    (direct / "overlay.yaml").write_text(OVERLAY)
    snakemake(direct, "--configfile", str(direct / "overlay.yaml"))

    ours, theirs = _digests(host / "results"), _digests(direct / "results")
    assert len(ours) > 30 and "group/atlas-demo_compare-group_ttest.tsv" in ours
    assert ours == theirs
    # every rule ran under the host's names, scripts and in-process jobs alike
    log = proc.stdout + proc.stderr
    for rule in ("connectome_extract_timeseries", "connectome_clean_timeseries",
                 "connectome_aggregate_connectomes"):
        assert f"rule {rule}:" in log or f"localrule {rule}:" in log


def test_catalog_standardized_usage_files():
    """What the Snakemake workflow catalog looks for: workflow/Snakefile (ours,
    included), config/README.md, and .snakemake-workflow-catalog.yml with the
    usage keys it reads."""
    import yaml

    entry = (REPO_ROOT / "workflow" / "Snakefile").read_text()
    assert [line for line in entry.splitlines() if line and not line.startswith("#")] \
        == ['include: "../Snakefile"']
    assert (REPO_ROOT / "config" / "README.md").is_file()
    usage = yaml.safe_load((REPO_ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["report"] is True and usage["software-stack-deployment"]["conda"] is True
