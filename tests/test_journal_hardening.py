"""The local backend's journal against hostile or unlucky files: deep JSON, damaged
lengths, a state file replaced under a crash's journal, readers racing a fold."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordId, RecordIntent, StateChange
from trunksync.errors import StateError
from trunksync.state import Intent

T0 = "2024-01-15T10:00:00.000000Z"
DEEP = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's recursion limit


def _create(name: str, trunk_id: str) -> list[StateChange]:
    intent = Intent(
        trunk_type="exotel",  # type: ignore[arg-type]
        config={"exotel_number": "+918044319240"},
        request_fingerprint="hmac-sha256:00:11",
        started_at=T0,
    )
    return [RecordIntent(name, intent), RecordId(name, intent.record(trunk_id, T0))]


def _backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "state" / "trunks.json")


def _journal(backend: LocalBackend) -> Path:
    return backend.path.with_name("trunks.json.journal")


def _commit(backend: LocalBackend, *batches: list[StateChange]) -> None:
    with backend.lock(timeout=0, command="test") as locked:
        for batch in batches:
            locked.commit(batch)


# --- deep JSON --------------------------------------------------------------------------------


def test_a_checksummed_but_deeply_nested_record_is_corrupt_not_a_traceback(
    tmp_path: Path,
) -> None:
    backend = _backend(tmp_path)
    backend.path.parent.mkdir(parents=True)
    payload = b'{"changes":' + DEEP + b"}"
    digest = hashlib.sha256(payload).hexdigest().encode()
    _journal(backend).write_bytes(b"TSJ1 %d %s\n%s\n" % (len(payload), digest, payload))
    with pytest.raises(StateError, match="not a state change"):
        backend.load()


def test_a_deeply_nested_history_line_is_skipped(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit(backend, _create("A", "ST_a"))
    history = backend.path.with_name("trunks.json.history")
    history.write_bytes(history.read_bytes() + DEEP + b"\n")
    assert [entry.serial for entry in backend.history()] == [1]
