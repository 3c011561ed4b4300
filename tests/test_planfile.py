"""Saved plans, format 2: authenticated with a key derived from the API key, tied to
one backend and one desired-state input, never silently overridden by a flag."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, TWO_TRUNKS, write
from trunksync.cli import cli
from trunksync.planfile import KEY_CONTEXT, plan_key


def run(emulator: EmulatorHandle, *args: str, input: str | None = None, **env: str) -> Result:
    base = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    return CliRunner().invoke(cli, list(args), env={**base, **env}, input=input)


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", TWO_TRUNKS)


def forge(path: Path, key: bytes, edit: dict[str, object]) -> None:
    """Edit a plan and recompute its MAC with `key` (what an attacker would try)."""
    document = json.loads(path.read_text())
    document.pop("mac")
    document["options"].update(edit)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    mac = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    path.write_text(json.dumps({**document, "mac": f"hmac-sha256:{mac}"}))


def test_the_plan_key_is_derived_from_the_api_key_not_equal_to_it() -> None:
    assert plan_key(API_KEY) == hmac.new(API_KEY.encode(), KEY_CONTEXT, hashlib.sha256).digest()
    assert plan_key(API_KEY) != plan_key(API_KEY + "x")
    assert API_KEY.encode() not in plan_key(API_KEY)


def test_a_plan_records_its_backend_and_input_and_no_secret(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan", "--prune").exit_code == 0
    text = Path("p.plan").read_text()
    document = json.loads(text)
    assert document["format_version"] == 2
    assert document["backend"]["kind"] == "local"
    assert document["backend"]["location"] == "state/trunks.json"
    digest = hashlib.sha256(trunks_file.read_bytes()).hexdigest()
    assert document["desired"]["sha256"] == f"sha256:{digest}"
    assert document["desired"]["secrets_unchecked"] is False
    assert document["options"]["prune"] is True
    assert document["mac"].startswith("hmac-sha256:")
    for secret in (API_KEY, *SECRET_ENV.values()):
        assert secret not in text


@pytest.mark.parametrize("key", [b"", b"a guess", API_KEY.encode()])
def test_a_forged_plan_is_refused(emulator: EmulatorHandle, trunks_file: Path, key: bytes) -> None:
    """Recomputing the MAC without the derived key (even with the raw API key) fails."""
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    forge(Path("p.plan"), key, {"prune": True})
    result = run(emulator, "apply", "p.plan")
    assert result.exit_code == 1
    assert "p.plan cannot be verified" in result.stderr
    assert emulator.stats()["create_calls"] == 0


@pytest.mark.parametrize("mac", ["hmac-sha256:\u00e9", "\ud800", "", 7])
def test_a_plan_with_a_malformed_mac_is_refused_in_one_line(
    emulator: EmulatorHandle, trunks_file: Path, mac: object
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    document = json.loads(Path("p.plan").read_text())
    Path("p.plan").write_text(json.dumps({**document, "mac": mac}))
    result = run(emulator, "apply", "p.plan")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    assert result.stderr.startswith("Error: ") and "p.plan cannot be verified" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_plan_made_with_another_api_key_is_refused(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan", TRUNKSYNC_API_KEY="other-key").exit_code == 0
    result = run(emulator, "apply", "p.plan")
    assert result.exit_code == 1
    assert "made with another API key" in result.stderr


def test_plan_out_needs_the_api_key_and_plain_plan_does_not(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", TRUNKSYNC_API_KEY="").exit_code == 0
    result = run(emulator, "plan", "--out", "p.plan", TRUNKSYNC_API_KEY="")
    assert result.exit_code == 1
    assert "TRUNKSYNC_API_KEY is not set" in result.stderr
    assert not Path("p.plan").exists()


def test_plan_out_to_a_missing_folder_is_one_line(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    result = run(emulator, "plan", "--out", "nowhere/p.plan")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot save the plan to nowhere/p.plan: folder nowhere not found\n"
    )


def test_plan_out_to_an_unwritable_folder_is_one_line(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    # Tests run as root, which ignores permissions: inject the OSError instead.
    denied = PermissionError(13, "Permission denied")
    with mock.patch("trunksync.planfile.atomic_write", side_effect=denied):
        result = run(emulator, "plan", "--out", "p.plan")
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot save the plan to p.plan: Permission denied\n"


def test_an_explicit_state_that_differs_from_the_plan_is_refused(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    result = run(emulator, "apply", "p.plan", "--state", "other/trunks.json")
    assert result.exit_code == 1
    assert "p.plan was made for the state local " in result.stderr
    assert emulator.stats()["create_calls"] == 0


def test_an_explicit_state_equal_to_the_default_is_not_replaced_by_the_plan(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan", "--state", "other/trunks.json").exit_code == 0
    result = run(emulator, "apply", "p.plan", "--state", "state/trunks.json")
    assert result.exit_code == 1
    assert "was made for the state" in result.stderr
    # Without --state, the plan's own state is used.
    assert run(emulator, "apply", "p.plan").exit_code == 0
    assert Path("other/trunks.json").exists() and not Path("state/trunks.json").exists()


def test_an_explicit_file_that_differs_from_the_plan_is_refused(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    write(Path("copy.yaml"), TWO_TRUNKS)
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    result = run(emulator, "apply", "p.plan", "-f", "copy.yaml")
    assert result.exit_code == 1
    assert "-f copy.yaml differs from the file p.plan was made from" in result.stderr
    assert run(emulator, "apply", "p.plan", "-f", "trunks.yaml").exit_code == 0


def test_the_saved_max_share_cannot_be_overridden(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    result = run(emulator, "apply", "p.plan", "--max-deactivate-share", "1")
    assert result.exit_code == 1
    assert "carries its own --max-deactivate-share" in result.stderr


def test_a_plan_marked_secrets_unchecked_cannot_be_applied(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    path = Path("p.plan")
    document = json.loads(path.read_text())
    document.pop("mac")
    document["desired"]["secrets_unchecked"] = True
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    mac = hmac.new(plan_key(API_KEY), canonical.encode(), hashlib.sha256).hexdigest()
    path.write_text(json.dumps({**document, "mac": f"hmac-sha256:{mac}"}))
    result = run(emulator, "apply", "p.plan")
    assert result.exit_code == 1
    assert "was made with --allow-missing-secrets" in result.stderr
    assert emulator.stats()["create_calls"] == 0


def test_a_version_1_plan_is_refused_with_a_way_forward(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    document = json.loads(Path("p.plan").read_text())
    document["format_version"] = 1
    Path("p.plan").write_text(json.dumps(document))
    result = run(emulator, "apply", "p.plan")
    assert result.exit_code == 1
    assert "p.plan has plan format version 1; this trunksync reads 2: make the plan again" in (
        result.stderr
    )


def test_a_plan_without_the_api_key_cannot_be_applied(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    result = run(emulator, "apply", "p.plan", TRUNKSYNC_API_KEY="")
    assert result.exit_code == 1
    assert "TRUNKSYNC_API_KEY is not set" in result.stderr
