"""The emulator's --data persistence: a snapshot plus an append-only log (O(1) per change)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from processes import emulator_process
from trunksync.emulator.store import TrunkStore, log_path_for
from trunksync.errors import TrunksyncError

EXOTEL = {"exotel_number": "+918044319240"}
TWILIO = {
    "address": "example.pstn.twilio.com",
    "numbers": ["+15550100000"],
    "username": "AC0123456789abcdef0123456789abcdef",
    "password": "secret-token",
}


def snapshot_ids(data: Path) -> list[str]:
    return [trunk["trunk_id"] for trunk in json.loads(data.read_text())["trunks"]]


def log_lines(data: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path_for(data).read_text().splitlines()]


def crash(store: TrunkStore) -> None:
    """What kill -9 leaves: the log's bytes on disk, no compaction, the lock released."""
    assert store._log is not None
    store._log.close()
    store._log = None


def test_a_change_appends_one_log_line_and_leaves_the_snapshot_alone(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    snapshot = data.read_bytes()
    first = store.create("One", "exotel", EXOTEL)
    second = store.create("Two", "twilio", TWILIO)
    store.deactivate(first)
    assert data.read_bytes() == snapshot  # not rewritten per change
    assert [line["op"] for line in log_lines(data)] == ["create", "create", "deactivate"]
    assert log_lines(data)[1]["trunk"]["trunk_id"] == second.trunk_id
    store.close()
    assert snapshot_ids(data) == [first.trunk_id, second.trunk_id]
    assert log_path_for(data).read_bytes() == b""
    store.close()  # closing twice is harmless


def test_a_crash_loses_nothing_that_was_logged(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    kept = store.create("Kept", "twilio", TWILIO)
    gone = store.create("Gone", "exotel", EXOTEL)
    store.deactivate(gone)
    crash(store)

    reopened = TrunkStore(data)
    assert [(t.trunk_id, t.active) for t in reopened.all()] == [
        (kept.trunk_id, True),
        (gone.trunk_id, False),
    ]
    assert reopened.get(kept.trunk_id) == kept  # the config and timestamp too
    # Opening compacted: the snapshot holds both, the log is empty.
    assert snapshot_ids(data) == [kept.trunk_id, gone.trunk_id]
    assert log_path_for(data).read_bytes() == b""
    reopened.close()


def test_clear_is_persisted_and_later_creates_survive_it(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    store.create("Before", "exotel", EXOTEL)
    store.clear()
    after = store.create("After", "exotel", EXOTEL)
    crash(store)
    reopened = TrunkStore(data)
    assert [t.trunk_id for t in reopened.all()] == [after.trunk_id]
    reopened.close()


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    kept = store.create("Kept", "exotel", EXOTEL)
    crash(store)
    with log_path_for(data).open("ab") as log:
        log.write(b'{"op":"create","trunk":{"trunk_id":"ST_to')  # cut short: never answered
    reopened = TrunkStore(data)
    assert [t.trunk_id for t in reopened.all()] == [kept.trunk_id]
    reopened.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (b"not json\n", "line 2"),
        (b'{"op":"rename"}\n', "unknown change 'rename'"),
        (b'{"op":"deactivate","trunk_id":"ST_nobody"}\n', "unknown trunk"),
        (b'{"op":"create","trunk":{"trunk_id":"ST_x"}}\n', "bad trunk record"),
    ],
)
def test_damage_before_the_last_line_is_refused(
    tmp_path: Path, damage: bytes, message: str
) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    store.create("Kept", "exotel", EXOTEL)
    crash(store)
    with log_path_for(data).open("ab") as log:
        log.write(damage)
    with pytest.raises(TrunksyncError, match=message):
        TrunkStore(data)
    # Refused, not repaired: the log is left as it was for a person to look at.
    assert log_path_for(data).read_bytes().endswith(damage)


def test_replaying_a_log_already_in_the_snapshot_is_harmless(tmp_path: Path) -> None:
    """A crash after the snapshot was written but before the log was emptied."""
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    first = store.create("One", "exotel", EXOTEL)
    store.clear()
    second = store.create("Two", "exotel", EXOTEL)
    store.deactivate(second)
    log = log_path_for(data).read_bytes()
    store.close()
    log_path_for(data).write_bytes(log)  # the emptying never happened
    reopened = TrunkStore(data)
    assert [(t.trunk_id, t.active) for t in reopened.all()] == [(second.trunk_id, False)]
    assert reopened.get(first.trunk_id) is None
    reopened.close()


def test_a_second_store_on_the_same_data_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    with pytest.raises(TrunksyncError, match="in use by another emulator"):
        TrunkStore(data)
    store.close()
    TrunkStore(data).close()  # free again once the first one closed


def test_the_log_is_private_like_the_data_file(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    TrunkStore(data).close()
    assert log_path_for(data).stat().st_mode & 0o077 == 0
    assert data.stat().st_mode & 0o077 == 0


def test_an_emulator_killed_with_sigkill_keeps_every_answered_trunk(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    headers = {"Authorization": "Bearer test-key"}
    body = {"trunk_name": "Kept", "trunk_type": "exotel", "trunk_config": EXOTEL}
    with emulator_process("--data", str(data)) as emulator:
        answers = [
            httpx.post(f"{emulator.url}/sip/create-outbound-trunk", json=body, headers=headers)
            for _ in range(3)
        ]
        created = [answer.json()["data"]["trunk_id"] for answer in answers]
        os.kill(emulator.process.pid, signal.SIGKILL)
        emulator.process.wait(timeout=20)
    assert len(log_lines(data)) == 3  # never compacted: the log is what survived
    with emulator_process("--data", str(data)) as emulator:
        listed = [t["trunk_id"] for t in emulator.active_trunks()]
    assert listed == created


def test_an_emulator_stopped_with_sigterm_compacts_its_log(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    headers = {"Authorization": "Bearer test-key"}
    body = {"trunk_name": "Kept", "trunk_type": "exotel", "trunk_config": EXOTEL}
    with emulator_process("--data", str(data)) as emulator:
        answer = httpx.post(f"{emulator.url}/sip/create-outbound-trunk", json=body, headers=headers)
    # emulator_process ends with SIGTERM and waits for the exit.
    assert snapshot_ids(data) == [answer.json()["data"]["trunk_id"]]
    assert log_path_for(data).read_bytes() == b""


def test_a_clean_data_file_is_not_rewritten_on_open_or_close(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    store.create("One", "exotel", EXOTEL)
    store.close()
    before = data.stat()
    reopened = TrunkStore(data)
    reopened.close()
    after = data.stat()
    # Same inode and mtime: write_atomically would have replaced the file.
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_change_after_close_is_refused_not_silently_lost(tmp_path: Path) -> None:
    data = tmp_path / "emulator.json"
    store = TrunkStore(data)
    store.close()
    with pytest.raises(TrunksyncError, match="is closed"):
        store.create("Late", "exotel", EXOTEL)
    assert store.all() == []


def test_a_store_without_a_data_file_keeps_trunks_in_memory_only(isolated: Path) -> None:
    store = TrunkStore()
    record = store.create("Memory", "exotel", EXOTEL)
    store.deactivate(record)
    store.close()
    assert [(t.trunk_id, t.active) for t in store.all()] == [(record.trunk_id, False)]
    assert list(isolated.iterdir()) == []  # the working folder: nothing written
