import sys
from pathlib import Path

# The tests folder has no __init__.py; make its helper modules importable by name.
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["emulator_fixtures", "hostile_server", "pg_cluster"]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder, with a fake HOME and no trunksync env vars,
    so no test can read or write the real home, the repo's state/, or a real API."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (
        "TRUNKSYNC_API_KEY",
        "TRUNKSYNC_API_URL",
        "TRUNKSYNC_STATE",
        "GITHUB_STEP_SUMMARY",
        "NO_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work
