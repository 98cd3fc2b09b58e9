"""Input safety (issue 8, item 4): nothing a cohort sheet or a config names is
executed, and participant ids cannot reach a path or a shell unchecked.

* No rule has a ``shell:`` or ``run:`` block: every job is a ``script:`` that
  receives ids and paths as Python values, so no shell string is ever built
  from a participant id, a file name or a config value.
* Participant ids that would break paths or wildcards (separators, ``..``,
  spaces, shell metacharacters, underscores that would split BIDS entities)
  are refused with the id in the message.
* Archives are extracted by ``fetch.archives.safe_extract`` only (tested in
  test_fetch.py for absolute paths, ``..`` and links out of the archive).
"""

import re

import pytest

from cohort_connectome import io
from cohort_connectome.errors import InputError
from conftest import REPO_ROOT

RULE_FILES = sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk")) + [REPO_ROOT / "Snakefile"]


_RUN_IN_PROCESS = re.compile(
    r"^(\s*)run:\n\1    run_in_process\(\"(\w+)\", input, output, params, wildcards, log, "
    r"rule\)\n(?!\1    )", flags=re.M)


def test_rules_run_scripts_only():
    """Every rule is a script: no shell command line, no inline code.  A run
    block is only the call that runs a script of scripts/ in the Snakemake
    process (common.smk's run_in_process), and nothing else."""
    offending = []
    n_rules = n_in_process = 0
    for path in RULE_FILES:
        text = path.read_text()
        n_rules += len(re.findall(r"^\s*rule \w+:", text, flags=re.M))
        in_process = {m.start(): m.group(2) for m in _RUN_IN_PROCESS.finditer(text)}
        for name in in_process.values():
            assert (REPO_ROOT / "scripts" / f"{name}.py").is_file(), name
        n_in_process += len(in_process)
        for match in re.finditer(r"^\s*(shell|run):", text, flags=re.M):
            if match.start() not in in_process:
                offending.append(f"{path.name}: {match.group(0).strip()}")
    assert n_rules >= 10, n_rules  # the rule files were read
    assert n_in_process == 2, n_in_process  # clean_timeseries, estimate_connectomes
    assert not offending, offending


def test_archives_are_extracted_only_by_safe_extract():
    """No module extracts an archive except through fetch.archives.safe_extract."""
    package = REPO_ROOT / "cohort_connectome"
    calls, n_modules = [], 0
    for path in sorted(package.rglob("*.py")):
        n_modules += 1
        for line in path.read_text().splitlines():
            if re.search(r"\.extractall\(|\.extract\(", line):
                calls.append(f"{path.relative_to(package).as_posix()}: {line.strip()}")
    assert n_modules > 20 and (package / "fetch" / "archives.py").is_file(), n_modules
    assert all(c.startswith("fetch/archives.py:") for c in calls), calls


@pytest.mark.parametrize("raw", [
    "../etc", "sub-01/evil", "01;rm -rf ~", "$(id)", "01`id`", "a b", "01_task-x",
    "sub-01*", "01\n02", "é01",
])
def test_ids_that_break_paths_or_shells_are_refused(raw):
    with pytest.raises(InputError, match="not a valid BIDS label") as err:
        io.participant_label(raw)
    assert repr(raw) in str(err.value)
