"""The package is installable and releasable (issue 10 item 1): a LICENSE that
matches the metadata, complete metadata, and an sdist whose own tests collect
and run (the test helper modules and vendored schemas are in it)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ["conftest.py", "emulator_fixtures.py", "helpers.py", "processes.py"]


def test_license_file_matches_the_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_metadata_is_complete_and_invents_no_url() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["keywords"] and project["classifiers"]
    assert "License ::" not in " ".join(project["classifiers"])  # PEP 639: the expression says it
    versions = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if "Python :: 3." in c}
    assert min(versions, key=lambda v: tuple(map(int, v.split(".")))) == "3.10"
    assert project["requires-python"] == ">=3.10"
    assert "urls" not in project  # no public home yet: nothing to point at


@pytest.mark.slow
def test_sdist_holds_the_test_helpers_and_its_tests_collect(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="needs the `build` package (pip install build)")
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [sdist] = out.glob("trunksync-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    [tree] = (tmp_path / "unpacked").iterdir()
    for name in HELPERS:
        assert (tree / "tests" / name).is_file(), name
    assert (tree / "LICENSE").is_file()
    assert (tree / "tests" / "schemas" / "gitlab-ci.json").is_file()
    assert (tree / ".github" / "workflows" / "release.yml").is_file()
    assert not list(tree.rglob("__pycache__"))
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    assert " error" not in collected.stdout.splitlines()[-1]
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            # Tests that read the sdist's own files: recipes, schemas, docs, metadata.
            "tests/test_ci_recipes.py",
            "tests/test_cli_reference.py",
            "tests/test_validate_json.py",
            "tests/test_packaging.py",
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-2000:]
