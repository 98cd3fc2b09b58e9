"""envs/*.yaml agree with pyproject.toml: same packages, same lower bounds."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"scikit-learn": "scikit-learn"}


def _requirements():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = {}
    for spec in project["dependencies"]:
        name, bound = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", spec).groups()
        reqs[name.lower()] = bound.replace(" ", "")
    return reqs


def test_every_env_pins_like_pyproject():
    reqs = _requirements()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        deps = yaml.safe_load(env.read_text())["dependencies"]
        for dep in deps:
            name, bound = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", dep).groups()
            if name == "python":
                continue
            assert name in reqs, f"{env.name}: {name} is not a dependency in pyproject.toml"
            lower = re.search(r">=([0-9.]+)", reqs[name]).group(1)
            assert bound == f">={lower}", f"{env.name}: {name}{bound} vs pyproject {reqs[name]}"


def test_every_rule_env_exists_and_covers_its_imports():
    """Each rule's conda env exists, and lists the packages its job imports."""
    needs = {"numerics.yaml": {"numpy", "scipy", "nibabel", "pandas"},
             "connectivity.yaml": {"numpy", "scipy", "pandas", "scikit-learn"},
             "plotting.yaml": {"numpy", "pandas", "matplotlib"},
             "group.yaml": {"numpy", "scipy", "pandas", "scikit-learn", "matplotlib"},
             "fetch.yaml": {"numpy", "pandas", "pooch"}}
    used = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        used |= set(re.findall(r'conda:\s*\n\s*"\.\./\.\./envs/([a-z_]+\.yaml)"', smk.read_text()))
    assert used == set(needs)
    for env, packages in needs.items():
        deps = yaml.safe_load((REPO / "envs" / env).read_text())["dependencies"]
        names = {re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in deps}
        assert packages <= names, (env, packages - names)
