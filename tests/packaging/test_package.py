"""The package as a user gets it: build the sdist and the wheel (from the sdist), install the wheel, not
editable, into a fresh virtual environment, and use it there as Airflow would."""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

NAME, VERSION = "airflow_provider_credly", "0.1.0"


def run(*cmd: str | Path, **kwargs) -> str:
    """Run a command; on failure the assertion shows its output."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, (
        f"{cmd} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from it (so the sdist is proven complete).
    No build isolation: the pinned setuptools of this environment is the backend, nothing is downloaded."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    return dist / f"{NAME}-{VERSION}-py3-none-any.whl"


@pytest.fixture(scope="module")
def fresh_env(wheel: Path, tmp_path_factory) -> dict:
    """A new venv with the wheel and its extras installed (pinned by constraints.txt), and the environment
    its commands run in: its own AIRFLOW_HOME, no PYTHONPATH, a working directory outside the checkout."""
    base = tmp_path_factory.mktemp("fresh")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(
        sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet",
        "--disable-pip-version-check", "-c", ROOT / "constraints.txt", f"{wheel}[duckdb,postgres]",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(AIRFLOW_HOME=str(base / "airflow_home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return {"bin": venv / "bin", "env": env, "cwd": base}


def test_wheel_metadata_is_release_ready(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = f"{NAME}-{VERSION}.dist-info"
        meta = email.parser.Parser(policy=email.policy.compat32).parsestr(
            zf.read(f"{info}/METADATA").decode()
        )
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        license_text = zf.read(f"{info}/licenses/LICENSE").decode()
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = meta.get_all("Classifier")
    for expected in (
        "Framework :: Apache Airflow",
        "Framework :: Apache Airflow :: Provider",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.13",
        "Development Status :: 4 - Beta",
    ):
        assert expected in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", urls["Repository"]), urls["Repository"]
    assert all(u.startswith(urls["Repository"]) for u in urls.values())  # one repository, no placeholder
    requires = meta.get_all("Requires-Dist")
    assert "apache-airflow<4,>=3.3.0" in requires
    # the provider registers with Airflow; the emulator fixtures are opt-in, not a pytest11 plugin
    assert "[apache_airflow_provider]" in entry_points
    assert "pytest11" not in entry_points
    assert f"{NAME}/py.typed" in names
    assert f"{NAME}/testing/pytest_plugin.py" in names
    assert not [n for n in names if n.startswith(("tests/", "dags_examples/", "benchmarks/"))]


def project_urls(wheel: Path) -> list[str]:
    """The ``Project-URL`` values of the wheel's METADATA (``"<name>, <url>"``)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = email.parser.Parser(policy=email.policy.compat32).parsestr(
            zf.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode()
        )
    return list(meta.get_all("Project-URL"))


def test_readme_links_work_outside_the_repository(wheel: Path):
    """PyPI shows the README as the long description: a relative link there points nowhere."""
    with zipfile.ZipFile(wheel) as zf:
        description = zf.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode().split("\n\n", 1)[1]
    assert "Apache Airflow provider for **Credly**" in description
    targets = re.findall(r"\]\(([^)\s]+)\)", description)
    assert targets, "the README links to its docs"
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#", "mailto:"))]
    assert relative == []
    # the README's links into the repository name the repository of the package's Project-URLs
    repository = next(
        line.split(", ", 1)[1] for line in project_urls(wheel) if line.startswith("Repository, ")
    )
    github = [t for t in targets if t.startswith("https://github.com/")]
    assert github and all(t.startswith(repository + "/") for t in github), github


def test_sdist_holds_the_sources_and_the_license(dist: Path):
    with tarfile.open(dist / f"{NAME}-{VERSION}.tar.gz") as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", f"{NAME}/py.typed", f"{NAME}/__init__.py"} <= names


def test_installed_wheel_imports_every_example_dag(fresh_env: dict):
    """Airflow's own DagBag parses dags_examples/ with the installed wheel: every file gives its DAG."""
    script = """
import json, sys
import airflow_provider_credly
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "package": airflow_provider_credly.__file__,
    "files": sorted({dag.fileloc.rsplit("/", 1)[1] for dag in bag.dags.values()}),
    "dag_ids": sorted(bag.dag_ids),
    "errors": bag.import_errors,
}))
"""
    out = run(
        fresh_env["bin"] / "python",
        "-c",
        script,
        ROOT / "dags_examples",
        env=fresh_env["env"],
        cwd=fresh_env["cwd"],
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == {}
    # the code comes from the installed wheel, not from the checkout
    assert Path(result["package"]).is_relative_to(fresh_env["bin"].parent)
    assert result["files"] == sorted(p.name for p in (ROOT / "dags_examples").glob("*.py"))
    assert "credly_badges_hourly_to_duckdb" in result["dag_ids"]


def test_airflow_providers_list_shows_the_installed_provider(fresh_env: dict):
    out = run(
        fresh_env["bin"] / "airflow",
        "providers",
        "list",
        "--output",
        "json",
        env=fresh_env["env"],
        cwd=fresh_env["cwd"],
    )
    providers = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    assert providers["airflow-provider-credly"]["version"] == VERSION
