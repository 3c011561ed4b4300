"""Built for CI: saved plans, targets, replace, prune with a safety threshold,
markdown and step summaries, exit codes; against a real emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, SENTINELS, TWO_TRUNKS, exotel_trunks, write
from trunksync.cli import cli

STATE = Path("state/trunks.json")


def run(emulator: EmulatorHandle, *args: str, **env: str) -> Result:
    base = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    return CliRunner().invoke(cli, list(args), env={**base, **env})


def ids() -> dict[str, str]:
    return {n: r["trunk_id"] for n, r in json.loads(STATE.read_text())["trunks"].items()}


def active(emulator: EmulatorHandle) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for trunk in emulator.active_trunks():
        found.setdefault(trunk["trunk_name"], []).append(trunk["trunk_id"])
    return found


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", TWO_TRUNKS)


def test_saved_plan_is_applied_exactly_and_only_once(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve", "--target", "Twilio Production").exit_code == 0
    made = run(emulator, "plan", "--out", "trunks.plan")
    assert made.exit_code == 0, made.output
    assert (
        "Saved the plan to trunks.plan: apply it with `trunksync apply trunks.plan`." in made.stdout
    )
    text = Path("trunks.plan").read_text()
    for sentinel in SENTINELS:
        assert sentinel not in text
    applied = run(emulator, "apply", "trunks.plan")  # no --auto-approve needed
    assert applied.exit_code == 0, applied.output
    assert sorted(active(emulator)) == ["Exotel India", "Twilio Production"]
    again = run(emulator, "apply", "trunks.plan")
    assert again.exit_code == 1
    assert "trunks.plan is stale: the state changed since it was made (serial " in again.stderr
    assert emulator.stats()["create_calls"] == 2


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("edit-plan", "trunks.plan cannot be verified: it was edited after it was made"),
        ("edit-file", "trunks.yaml changed since trunks.plan was made"),
        ("secret", "the password of 'Twilio Production' in the environment differs"),
        ("api", "was made for the API at"),
        ("state", "was made for another state"),
        ("platform", "the platform or the environment changed since trunks.plan was made"),
    ],
)
def test_saved_plan_refuses_anything_that_changed(
    emulator: EmulatorHandle, make_emulator: Any, trunks_file: Path, tamper: str, message: str
) -> None:
    env: dict[str, str] = {}
    if tamper == "state":  # a plan made against an existing state
        assert (
            run(emulator, "apply", "--auto-approve", "--target", "Twilio Production").exit_code == 0
        )
    if tamper == "platform":
        assert run(emulator, "apply", "--auto-approve").exit_code == 0
        with emulator.client() as client:
            client.delete(f"/sip/deactivate/{ids()['Exotel India']}")
        write(trunks_file, TWO_TRUNKS + "  - trunk_name: Third\n    trunk_type: exotel\n"
              "    trunk_config:\n      exotel_number: '+918044319249'\n")  # fmt: skip
    assert run(emulator, "plan", "--out", "trunks.plan").exit_code == 0
    if tamper == "edit-plan":
        plan = json.loads(Path("trunks.plan").read_text())
        plan["changes"][0]["name"] = "Something else"
        Path("trunks.plan").write_text(json.dumps(plan))
    elif tamper == "edit-file":
        write(trunks_file, TWO_TRUNKS.replace("+15550100000", "+15550100001"))
    elif tamper == "secret":
        env["TWILIO_AUTH_TOKEN"] = "another-token"
    elif tamper == "api":
        env["TRUNKSYNC_API_URL"] = make_emulator().url
    elif tamper == "state":  # another state file put in its place, same serial
        other = json.loads(STATE.read_text())
        other["lineage"] = "another-lineage"
        STATE.with_name("trunks.json.backup").unlink(missing_ok=True)
        STATE.write_text(json.dumps(other))
    before = emulator.stats()["create_calls"]
    result = run(emulator, "apply", "trunks.plan", **env)
    assert result.exit_code == 1
    assert message in result.stderr
    assert emulator.stats()["create_calls"] == before


def test_saved_plan_refuses_extra_flags(emulator: EmulatorHandle, trunks_file: Path) -> None:
    assert run(emulator, "plan", "--out", "p.plan").exit_code == 0
    result = run(emulator, "apply", "p.plan", "--prune")
    assert result.exit_code == 1
    assert "a saved plan carries its own" in result.stderr


def test_target_limits_plan_and_apply(emulator: EmulatorHandle, trunks_file: Path) -> None:
    plan = run(emulator, "plan", "--target", "Exotel India", "--json")
    assert [c["name"] for c in json.loads(plan.stdout)["changes"]] == ["Exotel India"]
    assert run(emulator, "apply", "--auto-approve", "--target", "Exotel India").exit_code == 0
    assert list(active(emulator)) == ["Exotel India"]
    unknown = run(emulator, "plan", "--target", "Exotel Indai")
    assert unknown.exit_code == 1
    assert (
        "--target 'Exotel Indai' matches no entry (did you mean 'Exotel India'?)" in unknown.stderr
    )


def test_replace_creates_new_records_it_and_deactivates_old(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    old = ids()["Exotel India"]
    plan = run(emulator, "plan", "--replace", "Exotel India")
    assert f'  -/+ replace "Exotel India" (exotel) {old}' in plan.stdout
    result = run(emulator, "apply", "--auto-approve", "--replace", "Exotel India")
    assert result.exit_code == 0, result.output
    new = ids()["Exotel India"]
    assert new != old
    assert f'  + created "Exotel India" {new} (replaced {old}, now deactivated)' in result.stdout
    assert active(emulator)["Exotel India"] == [new]
    assert json.loads(STATE.read_text())["retired"] == {}


def test_replace_needs_an_existing_entry(emulator: EmulatorHandle, trunks_file: Path) -> None:
    result = run(emulator, "plan", "--replace", "Exotel India")
    assert result.exit_code == 1
    assert (
        "only an entry that is both in the file and in the state can be replaced" in result.stderr
    )


def test_a_retired_trunk_is_deactivated_by_the_next_apply(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    state = json.loads(STATE.read_text())
    leftover = state["trunks"].pop("Exotel India")["trunk_id"]
    state["retired"] = {leftover: {"name": "Exotel India", "since": "2026-01-01T00:00:00Z"}}
    STATE.write_text(json.dumps(state))
    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert f'  - retire "Exotel India" {leftover}' in result.stdout
    assert f'  - deactivated "Exotel India" {leftover}' in result.stdout
    assert leftover not in [i for found in active(emulator).values() for i in found]
    assert json.loads(STATE.read_text())["retired"] == {}


def test_prune_deactivates_orphans_and_forgets_them(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    gone = ids()["Exotel India"]
    write(trunks_file, TWO_TRUNKS.split("  - trunk_name: Exotel")[0])
    left = run(emulator, "apply", "--auto-approve")
    assert '  ! orphan "Exotel India"' in left.stdout and gone in [
        i for found in active(emulator).values() for i in found
    ]
    pruned = run(emulator, "apply", "--auto-approve", "--prune", "--detailed-exitcode")
    assert pruned.exit_code == 2, pruned.output
    assert f'  - deactivated "Exotel India" {gone}' in pruned.stdout
    assert list(ids()) == ["Twilio Production"]
    assert list(active(emulator)) == ["Twilio Production"]
    assert run(emulator, "apply", "--auto-approve", "--detailed-exitcode").exit_code == 0


def test_prune_threshold_is_checked_in_plan_and_apply_before_any_change(
    emulator: EmulatorHandle, isolated: Path
) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(10))
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    write(isolated / "trunks.yaml", exotel_trunks(6))
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = run(emulator, *command, "--prune")
        assert result.exit_code == 1
        assert "refusing to deactivate 4 of 10 managed trunks (40% > 30% allowed)" in result.stderr
    assert len(active(emulator)) == 10 and len(ids()) == 10
    assert (
        run(
            emulator, "apply", "--auto-approve", "--prune", "--max-deactivate-share", "0.5"
        ).exit_code
        == 0
    )
    assert len(active(emulator)) == 6


def test_markdown_format_and_step_summary(
    emulator: EmulatorHandle, trunks_file: Path, isolated: Path
) -> None:
    summary = isolated / "summary.md"
    plan = run(emulator, "plan", "--format", "markdown", GITHUB_STEP_SUMMARY=str(summary))
    assert plan.exit_code == 0
    assert plan.stdout.startswith("### trunksync plan")
    assert "| + | Twilio Production | create | twilio |" in plan.stdout
    applied = run(emulator, "apply", "--auto-approve", GITHUB_STEP_SUMMARY=str(summary))
    assert applied.exit_code == 0
    text = summary.read_text()
    assert text.count("### trunksync plan") == 1
    assert text.count("### trunksync apply") == 1
    assert "Apply finished: 2 created" in text
    for sentinel in SENTINELS:
        assert sentinel not in text
