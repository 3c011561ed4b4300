"""The emulator over real HTTP on loopback (in-thread uvicorn, httpx clients)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from emulator_fixtures import EmulatorHandle
from trunksync.cli import cli
from trunksync.emulator import EmulatorConfig, create_app

CREATE = "/sip/create-outbound-trunk"
TWILIO = {
    "trunk_name": "Twilio Production",
    "trunk_type": "twilio",
    "trunk_config": {
        "address": "example.pstn.twilio.com",
        "numbers": ["+15550100000"],
        "username": "AC0123456789abcdef0123456789abcdef",
        "password": "secret-token",
    },
}
EXOTEL = {
    "trunk_name": "Exotel India",
    "trunk_type": "exotel",
    "trunk_config": {"exotel_number": "+918044319240"},
}
MakeEmulator = Callable[..., EmulatorHandle]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition with a bound; for outcomes that race a client-side timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def with_config(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, "trunk_config": {**body["trunk_config"], **changes}}


def create(emulator: EmulatorHandle, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    with emulator.client(**kwargs) as client:
        return client.post(CREATE, json=body)


def test_create_twilio_and_exotel_then_list_hides_config(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        first = client.post(CREATE, json=TWILIO)
        second = client.post(CREATE, json=EXOTEL)
        listed = client.get("/sip/list")
    for response in (first, second):
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True
        assert body["message"] == (
            "Outbound trunk created successfully. Store the trunk_id securely."
        )
        trunk_id = body["data"]["trunk_id"]
        assert trunk_id.startswith("ST_")
        assert len(trunk_id) == 15
        assert trunk_id[3:].isalnum()
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert [row["trunk_name"] for row in rows] == ["Twilio Production", "Exotel India"]
    assert all(
        set(row) == {"trunk_id", "trunk_name", "trunk_type", "trunk_created_at"} for row in rows
    )
    assert len(rows[0]["trunk_created_at"]) == len("2024-01-15T10:00:00.000000")
    stored = emulator.trunks()
    assert stored[0]["trunk_config"] == TWILIO["trunk_config"]
    assert stored[0]["active"] is True


def test_deactivate_hides_trunk_and_twice_is_400(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        trunk_id = client.post(CREATE, json=EXOTEL).json()["data"]["trunk_id"]
        first = client.delete(f"/sip/deactivate/{trunk_id}")
        second = client.delete(f"/sip/deactivate/{trunk_id}")
        unknown = client.delete("/sip/deactivate/ST_doesnotexist")
        listed = client.get("/sip/list").json()["data"]
    assert first.status_code == 200
    assert first.json()["data"] == {"trunk_id": trunk_id}
    assert second.status_code == 400
    assert second.json() == {"detail": "Trunk is already deactivated"}
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Trunk not found"}
    assert listed == []
    assert [t["active"] for t in emulator.trunks()] == [False]  # the record is kept
    assert emulator.stats() == {
        "create_calls": 1,
        "trunks_created": 1,
        "list_calls": 1,
        "deactivate_calls": 3,
        "faults_injected": 0,
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", CREATE),
        ("GET", "/sip/list"),
        ("DELETE", "/sip/deactivate/ST_x"),
        ("GET", "/auth/check-key"),
    ],
)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-key"}]
)
def test_auth_required(
    emulator: EmulatorHandle, method: str, path: str, headers: dict[str, str]
) -> None:
    # A body that is not even JSON: auth must be refused before the body is read.
    response = httpx.request(method, emulator.url + path, headers=headers, content=b"{")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing API key"}
    assert emulator.stats()["create_calls"] == 0


def test_check_key(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        response = client.get("/auth/check-key")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["user_name"] == "emulator"
    assert set(data) == {"user_name", "org_name", "user_email", "created_at"}


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in TWILIO.items() if k != "trunk_name"},
        {**TWILIO, "trunk_name": ""},
        {**TWILIO, "trunk_name": "x" * 101},
        {**TWILIO, "trunk_name": 5},
        {**TWILIO, "trunk_type": "vonage"},
        {**TWILIO, "trunk_config": ["+15550100000"]},
    ],
)
def test_body_shape_errors_are_422(emulator: EmulatorHandle, body: dict[str, Any]) -> None:
    response = create(emulator, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    assert all({"loc", "msg", "type"} <= set(item) for item in detail)
    assert emulator.trunks() == []


def test_missing_trunk_name_points_at_the_field(emulator: EmulatorHandle) -> None:
    body = {k: v for k, v in TWILIO.items() if k != "trunk_name"}
    detail = create(emulator, body).json()["detail"]
    assert detail[0]["loc"] == ["body", "trunk_name"]
    assert detail[0]["type"] == "missing"


def test_invalid_json_is_422(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        response = client.post(CREATE, content=b"{not json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**EXOTEL, "trunk_type": "twilio"}, "missing required field 'address'"),
        ({**TWILIO, "trunk_type": "exotel"}, "unknown field 'address'"),
        (with_config(TWILIO, numbers=["5550100000"]), "not an E.164 number"),
        (with_config(TWILIO, numbers=["+15550100000\n"]), "not an E.164 number"),
        (with_config(TWILIO, numbers=["+0123"]), "not an E.164 number"),
        (with_config(TWILIO, numbers=["+1234567890123456"]), "not an E.164 number"),
        (with_config(TWILIO, numbers=[]), "at least one number"),
        (with_config(TWILIO, numbers="+15550100000"), "trunk_config.numbers must be"),
        (with_config(TWILIO, password=123), "trunk_config.password must be"),
        (with_config(EXOTEL, sip_port=0), "trunk_config.sip_port must be"),
        (with_config(EXOTEL, sip_port=65536), "trunk_config.sip_port must be"),
        (with_config(EXOTEL, sip_port="5060"), "trunk_config.sip_port must be"),
        (with_config(EXOTEL, sip_port=True), "trunk_config.sip_port must be"),
        (with_config(EXOTEL, extra="x"), "unknown field 'extra'"),
    ],
)
def test_config_type_mismatch_is_400(
    emulator: EmulatorHandle, body: dict[str, Any], expected: str
) -> None:
    emulator.queue_faults(["error-after"])  # must not be spent on an invalid request
    response = create(emulator, body)
    assert response.status_code == 400
    assert expected in response.json()["detail"]
    assert "secret-token" not in response.text
    assert emulator.trunks() == []
    assert emulator.queue_faults([]) == ["error-after"]
    assert emulator.stats()["create_calls"] == 1


def test_exotel_optional_fields_accepted(emulator: EmulatorHandle) -> None:
    body = with_config(EXOTEL, sip_host="sip.example.com", sip_port=5060, sip_domain="example.com")
    assert create(emulator, body).status_code == 200


def test_error_before_does_not_create(emulator: EmulatorHandle) -> None:
    emulator.queue_faults(["error-before"])
    response = create(emulator, TWILIO)
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "Internal error during creation"}
    assert emulator.trunks() == []
    assert emulator.stats()["create_calls"] == 1


def test_error_after_creates(emulator: EmulatorHandle) -> None:
    emulator.queue_faults(["error-after"])
    response = create(emulator, TWILIO)
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "Internal error during creation"}
    assert [t["trunk_name"] for t in emulator.trunks()] == ["Twilio Production"]


def test_drop_after_creates_then_drops_connection(emulator: EmulatorHandle) -> None:
    emulator.queue_faults(["drop-after"])
    with pytest.raises(httpx.TransportError) as caught:
        create(emulator, TWILIO)
    assert not isinstance(caught.value, httpx.ConnectError)
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    assert len(emulator.trunks()) == 1
    # The server is still fine afterwards.
    assert create(emulator, EXOTEL).status_code == 200


def test_slow_creates_then_client_times_out(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=["slow"], slow_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        create(emulator, TWILIO, timeout=httpx.Timeout(5.0, read=0.5))
    # The trunk is created before the sleep; poll rather than assume the server
    # got that far before the client gave up (it nearly always has).
    assert wait_until(lambda: len(emulator.trunks()) == 1)


def test_slow_answers_200_eventually(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=["slow"], slow_seconds=0.01)
    assert create(emulator, TWILIO).status_code == 200


def test_rate_limit_has_retry_after_and_does_not_create(make_emulator: MakeEmulator) -> None:
    emulator = make_emulator(faults=["rate-limit"], retry_after_seconds=7)
    response = create(emulator, TWILIO)
    assert response.status_code == 429
    assert response.json() == {"detail": "Too many requests"}
    assert response.headers["Retry-After"] == "7"
    assert emulator.trunks() == []


def test_fault_queue_is_fifo_and_none_passes(emulator: EmulatorHandle) -> None:
    assert emulator.queue_faults(["none", "error-before"]) == ["none", "error-before"]
    codes = [create(emulator, EXOTEL).status_code for _ in range(3)]
    assert codes == [200, 500, 200]
    assert emulator.stats()["faults_injected"] == 1


def test_unknown_fault_kind_refused(emulator: EmulatorHandle) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/faults", json={"create": ["explode"]})
    assert response.status_code == 400
    assert "explode" in response.json()["detail"]


def test_fault_rate_is_seeded(make_emulator: MakeEmulator) -> None:
    def outcomes() -> list[int]:
        emulator = make_emulator(fault_rate=0.5, fault_kinds=("error-before",), seed=42)
        return [create(emulator, EXOTEL).status_code for _ in range(12)]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {200, 500}


def test_reset_clears_everything(emulator: EmulatorHandle) -> None:
    create(emulator, EXOTEL)
    emulator.queue_faults(["error-before"])
    emulator.reset()
    assert emulator.trunks() == []
    assert emulator.queue_faults([]) == []
    assert emulator.stats()["create_calls"] == 0


def test_unexpected_error_is_500_success_false(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(emulator.running.state.store, "active", broken)
    with emulator.client() as client:
        response = client.get("/sip/list")
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "Internal server error"}


def test_data_file_persists_across_instances(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    data = tmp_path / "sub" / "emulator.json"
    first = make_emulator(data_file=data)
    kept = create(first, TWILIO).json()["data"]["trunk_id"]
    gone = create(first, EXOTEL).json()["data"]["trunk_id"]
    with first.client() as client:
        assert client.delete(f"/sip/deactivate/{gone}").status_code == 200
    first.running.stop()  # folds the log into the data file
    # No temporary file left; the log stays beside the data file, empty.
    assert sorted(p.name for p in data.parent.iterdir()) == ["emulator.json", "emulator.json.log"]
    assert (data.parent / "emulator.json.log").read_bytes() == b""

    second = make_emulator(data_file=data)
    with second.client() as client:
        listed = client.get("/sip/list").json()["data"]
        again = client.delete(f"/sip/deactivate/{gone}")
    assert [row["trunk_id"] for row in listed] == [kept]
    assert again.status_code == 400
    assert second.trunks()[0]["trunk_config"] == TWILIO["trunk_config"]


def test_corrupt_data_file_is_a_clear_error(tmp_path: Path) -> None:
    from trunksync.errors import TrunksyncError

    data = tmp_path / "emulator.json"
    data.write_text("{not json")
    with pytest.raises(TrunksyncError, match="emulator data file"):
        create_app(EmulatorConfig(api_key="k", data_file=data))


def test_config_refuses_unknown_fault() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        EmulatorConfig(api_key="k", faults=["explode"])


def test_config_repr_hides_key() -> None:
    assert "sekrit" not in repr(EmulatorConfig(api_key="sekrit"))


def test_command_refuses_remote_host() -> None:
    result = CliRunner().invoke(cli, ["emulator", "--host", "0.0.0.0"])
    assert result.exit_code == 1  # a usage error: 1 for every command (issue 10)
    assert "--allow-remote" in result.output


def test_command_without_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # makes `import fastapi` fail
    result = CliRunner().invoke(cli, ["emulator", "--port", "0"])
    assert result.exit_code == 1
    assert "pip install 'trunksync[emulator]'" in result.output


def test_command_module_does_not_import_fastapi() -> None:
    code = (
        "import sys, trunksync.commands.emulator, trunksync.emulator;"
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.e2e
def test_cli_subprocess_serves_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "TRUNKSYNC_API_KEY": "cli-key"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trunksync", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        # Bounded wait for the first line, so a broken emulator fails instead of hanging.
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no output from the emulator"
        line = process.stdout.readline()
        prefix = "trunksync emulator listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        url = line.split(" on ", 1)[1].strip()
        response = httpx.get(f"{url}/auth/check-key", headers={"Authorization": "Bearer cli-key"})
        assert response.status_code == 200
        refused = httpx.get(f"{url}/auth/check-key", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down, then re-raises the SIGTERM it caught.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "cli-key" not in stderr


def test_a_client_gone_before_its_body_is_read_is_no_error_and_creates_nothing() -> None:
    # A killed apply hangs up while its create waits out the latency: reading the
    # body then fails (ClientDisconnect), which the emulator logged as a traceback.
    import asyncio

    app = create_app(EmulatorConfig(api_key="k"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CREATE,
        "raw_path": CREATE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer k"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert app.state.emulator.stats.trunks_created == 0
