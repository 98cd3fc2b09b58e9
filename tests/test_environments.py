"""envs/*.yaml agree with pyproject.toml (same packages, same lower bounds), and
the pipeline never imports nilearn."""

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
             "fetch.yaml": {"numpy", "pandas", "pooch", "nibabel"}}
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


def test_the_pipeline_never_imports_nilearn():
    """nilearn is the tests' oracle, never a dependency of the workflow: no
    import of it in the package, the scripts/ adapters or the rule files, and
    importing every module of the package leaves it unloaded."""
    import ast
    import subprocess
    import sys

    sources = [*(REPO / "cohort_connectome").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    assert len(sources) > 30
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "nilearn" for n in names), (path, names)
    for smk in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        assert not re.search(r"^\s*(from|import)\s+nilearn\b", smk.read_text(), flags=re.M), smk
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts)
                     for p in (REPO / "cohort_connectome").rglob("*.py"))
    modules = [m.removesuffix(".__init__") for m in modules]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nilearn'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
