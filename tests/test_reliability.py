"""Nothing lost, nothing duplicated: every fault mode, leftover intents, trunks
created elsewhere, import and plan --refresh, against a real emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, TWO_TRUNKS, exotel_trunks, write
from trunksync.cli import cli
from trunksync.state import Intent, StateStore

STATE = Path("state/trunks.json")


def run(emulator: EmulatorHandle, *args: str) -> Result:
    env = {**SECRET_ENV, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
    return CliRunner().invoke(cli, list(args), env=env)


def state() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(STATE.read_text())
    return data


def assert_converged(emulator: EmulatorHandle, names: set[str]) -> None:
    """Exactly one active trunk per name, each one recorded, no intent left."""
    active = emulator.active_trunks()
    assert sorted(t["trunk_name"] for t in active) == sorted(names)
    recorded = {name: rec["trunk_id"] for name, rec in state()["trunks"].items()}
    assert recorded == {t["trunk_name"]: t["trunk_id"] for t in active}
    assert state()["intents"] == {}


def create_remote(emulator: EmulatorHandle, name: str, number: str = "+918044319240") -> str:
    body = {"trunk_name": name, "trunk_type": "exotel", "trunk_config": {"exotel_number": number}}
    with emulator.client() as client:
        trunk_id: str = client.post("/sip/create-outbound-trunk", json=body).json()["data"][
            "trunk_id"
        ]
    return trunk_id


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", TWO_TRUNKS)


@pytest.mark.parametrize("fault", ["error-before", "error-after", "drop-after", "rate-limit"])
def test_every_fault_mode_ends_with_one_trunk_per_name(
    make_emulator: Any, trunks_file: Path, fault: str
) -> None:
    emulator = make_emulator(faults=[fault, fault], retry_after_seconds=0)
    # A short --timeout: an unknown outcome (a 500 too) is waited out for
    # --timeout + 2 s before the list is trusted.
    result = run(emulator, "apply", "--auto-approve", "--parallelism", "1", "--timeout", "0.5")
    assert result.exit_code == 0, result.output
    assert_converged(emulator, {"Twilio Production", "Exotel India"})


def test_answer_slower_than_the_client_timeout_is_adopted(
    make_emulator: Any, trunks_file: Path
) -> None:
    emulator = make_emulator(faults=["slow"], slow_seconds=1.5)
    result = run(emulator, "apply", "--auto-approve", "--timeout", "0.5")
    assert result.exit_code == 0, result.output
    assert "(adopted after: no answer from the API (timed out))" in result.stdout
    assert_converged(emulator, {"Twilio Production", "Exotel India"})
    assert emulator.stats()["create_calls"] == 2


def test_random_faults_on_many_trunks_converge(make_emulator: Any, isolated: Path) -> None:
    write(isolated / "trunks.yaml", exotel_trunks(40))
    emulator = make_emulator(
        fault_rate=0.3,
        fault_kinds=("error-before", "error-after", "drop-after", "rate-limit"),
        seed=7,
        retry_after_seconds=0,
    )
    for _ in range(5):  # a trunk may fail 3 times in a row; a rerun finishes it
        applied = run(emulator, "apply", "--auto-approve", "--parallelism", "8", "--timeout", "0.5")
        if applied.exit_code == 0:
            break
    assert_converged(emulator, {f"Trunk {i:05d}" for i in range(40)})


def write_intent(name: str, started_at: str = "2020-01-01T00:00:00.000000Z") -> None:
    """Leave an intent behind, as a run killed right after sending would."""
    current = StateStore(STATE).load()
    current.intents[name] = Intent(
        trunk_type="exotel",
        config={"exotel_number": "+918044319240"},
        request_fingerprint="hmac-sha256:00:00",
        started_at=started_at,
    )
    StateStore(STATE).save(current)


def test_leftover_intent_with_a_trunk_is_adopted_without_creating(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    write_intent("Exotel India")
    trunk_id = create_remote(emulator, "Exotel India")
    before = emulator.stats()["create_calls"]
    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert f'Adopted "Exotel India" {trunk_id}: an earlier create did succeed.' in result.stdout
    assert state()["trunks"]["Exotel India"]["trunk_id"] == trunk_id
    assert emulator.stats()["create_calls"] == before + 1  # only Twilio Production
    assert_converged(emulator, {"Twilio Production", "Exotel India"})


def test_leftover_intent_without_a_trunk_is_created_again(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    write_intent("Exotel India")
    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert (
        '"Exotel India": an earlier create did not happen; it can be sent again.' in result.stdout
    )
    assert_converged(emulator, {"Twilio Production", "Exotel India"})


def test_offline_plan_flags_a_leftover_intent(trunks_file: Path) -> None:
    write_intent("Exotel India")
    result = CliRunner().invoke(cli, ["plan"], env=SECRET_ENV)
    assert (
        "has an unknown outcome; apply checks the platform before creating again" in result.stdout
    )


def test_ambiguous_intent_stops_that_entry_and_says_what_to_run(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    write_intent("Exotel India")
    first, second = create_remote(emulator, "Exotel India"), create_remote(emulator, "Exotel India")
    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert "cannot tell which trunk named 'Exotel India' trunksync created" in result.stdout
    assert f"trunksync import 'Exotel India' {first}" in result.stdout
    assert second in result.stdout
    assert "Exotel India" in state()["intents"]  # kept until the user decides
    assert len([t for t in emulator.active_trunks() if t["trunk_name"] == "Exotel India"]) == 2


def test_trunk_created_elsewhere_is_not_duplicated_then_imported(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    trunk_id = create_remote(emulator, "Exotel India")
    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 1
    assert f"Adopt it with: trunksync import 'Exotel India' {trunk_id}" in result.stdout
    assert "1 in conflict (not created)" in result.stdout
    assert len(emulator.active_trunks()) == 2  # Twilio Production was still created

    imported = run(emulator, "import", "Exotel India", trunk_id)
    assert (imported.exit_code, imported.stdout) == (0, f'Imported "Exotel India" as {trunk_id}.\n')
    plan = run(emulator, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert_converged(emulator, {"Twilio Production", "Exotel India"})


@pytest.mark.parametrize(
    ("name", "trunk_id", "message"),
    [
        ("Nope", None, "has no trunk named 'Nope': add the entry first"),
        ("Exotel India", "ST_missing", "ST_missing is not an active trunk of this API key"),
        ("Twilio Production", None, "is exotel trunk 'Exotel India' on the platform, not twilio"),
    ],
)
def test_import_checks_the_id(
    emulator: EmulatorHandle, trunks_file: Path, name: str, trunk_id: str | None, message: str
) -> None:
    existing = create_remote(emulator, "Exotel India")
    result = run(emulator, "import", name, trunk_id or existing)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not STATE.exists() or state()["trunks"] == {}


def test_refresh_shows_recreate_and_apply_recreates(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    old = state()["trunks"]["Exotel India"]["trunk_id"]
    with emulator.client() as client:
        assert client.delete(f"/sip/deactivate/{old}").status_code == 200

    offline = run(emulator, "plan", "--detailed-exitcode")
    assert offline.exit_code == 0  # the offline plan cannot know
    refreshed = run(emulator, "plan", "--refresh", "--json")
    changes = {c["name"]: c for c in json.loads(refreshed.stdout)["changes"]}
    assert changes["Exotel India"]["action"] == "recreate"
    assert changes["Exotel India"]["trunk_id"] == old

    result = run(emulator, "apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert f"{old} was deactivated outside trunksync" in result.stdout
    assert_converged(emulator, {"Twilio Production", "Exotel India"})
    assert state()["trunks"]["Exotel India"]["trunk_id"] != old


def test_refresh_shows_adopt_for_a_resolvable_intent(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    write_intent("Exotel India")
    trunk_id = create_remote(emulator, "Exotel India")
    result = run(emulator, "plan", "--refresh", "--json")
    changes = {c["name"]: c for c in json.loads(result.stdout)["changes"]}
    assert (changes["Exotel India"]["action"], changes["Exotel India"]["trunk_id"]) == (
        "adopt",
        trunk_id,
    )
    assert "Exotel India" in state()["intents"]  # plan never writes


def test_refresh_needs_the_api_key(trunks_file: Path) -> None:
    result = CliRunner().invoke(cli, ["plan", "--refresh"], env=SECRET_ENV)
    assert result.exit_code == 1
    assert "TRUNKSYNC_API_KEY is not set" in result.stderr


def test_garbage_answers_never_lose_a_trunk(emulator: EmulatorHandle, trunks_file: Path) -> None:
    """A server answering 200 with a body that is not JSON: outcome unknown, then resolved."""

    def garbage(request: httpx.Request) -> httpx.Response:
        with httpx.Client(base_url=emulator.url) as real:
            answer = real.send(
                real.build_request(
                    request.method,
                    str(request.url.path),
                    headers=request.headers,
                    content=request.content,
                )
            )
        if request.url.path.endswith("create-outbound-trunk"):
            return httpx.Response(200, content=b"<html>oops</html>")
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    from trunksync.apply import Applier, Settler
    from trunksync.backends import open_backend
    from trunksync.client import PlatformClient
    from trunksync.config import load_desired
    from trunksync.plan import compute_plan

    desired = load_desired(trunks_file, SECRET_ENV)
    backend = open_backend(str(STATE))
    with (
        PlatformClient(emulator.url, API_KEY, transport=httpx.MockTransport(garbage)) as client,
        backend.lock(timeout=0, command="test") as locked,
    ):
        applier = Applier(client, locked, parallelism=2, settler=Settler(client, timeout=1))
        results = applier.run(compute_plan(desired, locked.state).creates(), lambda r: None)
    assert sorted(r.status for r in results) == ["created", "created"]
    assert all("adopted after: unexpected answer to create" in str(r.message) for r in results)
    assert_converged(emulator, {"Twilio Production", "Exotel India"})


def test_an_extra_trunk_with_a_managed_name_is_reported(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    assert run(emulator, "apply", "--auto-approve").exit_code == 0
    extra = create_remote(emulator, "Exotel India")
    result = run(emulator, "plan", "--refresh")
    assert f"the platform also has {extra} with this name, unknown to the state" in result.stdout
