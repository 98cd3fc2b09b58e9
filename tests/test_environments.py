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


def test_every_env_names_the_rules_that_use_it():
    """Each env's "# Rules: a, b." comment lists exactly the rules whose conda: is it."""
    users = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^\s*rule (\w+):\n((?:\s*\n|\s{4,}.*\n)*)",
                                     smk.read_text(), flags=re.M):
            for env in re.findall(r'"\.\./\.\./envs/([a-z_]+\.yaml)"', body):
                users.setdefault(env, set()).add(rule)
    assert users
    for env in sorted((REPO / "envs").glob("*.yaml")):
        comment = " ".join(line.lstrip("# ") for line in env.read_text().splitlines()
                           if line.startswith("#"))
        named = re.match(r"Rules: ([^.]*)\.", comment)
        assert named, f"{env.name}: no '# Rules: ...' comment"
        assert set(named.group(1).replace(",", " ").split()) == users.get(env.name, set()), \
            env.name
