"""The local backend's journal against hostile or unlucky files: deep JSON, damaged
lengths, a state file replaced under a crash's journal, readers racing a fold."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from trunksync.backends import filejournal
from trunksync.backends.filejournal import JournalRecord, encode_record, scan
from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordId, RecordIntent, StateChange
from trunksync.errors import StateError
from trunksync.state import READ_ATTEMPTS, Intent, atomic_write

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


CRASHER = """
import os, sys
from pathlib import Path
from trunksync.backends.local import LocalBackend
from trunksync.changes import ForgetIntent, RecordId, RecordIntent
from trunksync.state import Intent

intent = Intent(trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z")
locked = LocalBackend(Path(sys.argv[1])).lock(timeout=0, command="crasher").__enter__()
for step in sys.argv[2:]:  # one commit each: intent:NAME, id:NAME (ST_NAME), forget:NAME
    kind, name = step.split(":")
    if kind == "intent":
        locked.commit([RecordIntent(name, intent)])
    elif kind == "id":
        locked.commit([RecordId(name, intent.record("ST_" + name, "2024-01-15T10:00:01Z"))])
    else:
        locked.commit([ForgetIntent(name)])
os._exit(137)  # as kill -9: no fold, the journal stays
"""


def _crash(backend: LocalBackend, *steps: str) -> bytes:
    """A real process commits `steps` to the journal and dies; the journal it left."""
    run = subprocess.run([sys.executable, "-c", CRASHER, str(backend.path), *steps], check=False)
    assert run.returncode == 137
    return _journal(backend).read_bytes()


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


# --- damaged lengths --------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1])
def test_a_length_pointing_past_later_records_is_refused_not_taken_for_a_torn_tail(
    tmp_path: Path, which: int
) -> None:
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    journal = _crash(backend, "intent:a", "id:a", "intent:b", "id:b", "forget:b")
    headers = [match.start() for match in re.finditer(rb"TSJ1 ", journal)]
    at = headers[which] + len(b"TSJ1 ")
    damaged = journal[:at] + b"9" + journal[at:]  # 10 to 20 times its real length
    _journal(backend).write_bytes(damaged)
    with pytest.raises(StateError, match=r"corrupt at byte \d+ \(its length points past"):
        backend.load()
    with pytest.raises(StateError, match="corrupt"), backend.lock(timeout=0, command="x"):
        pytest.fail("a damaged journal was accepted")
    assert _journal(backend).read_bytes() == damaged


def test_a_last_record_cut_short_is_still_a_torn_tail(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    journal = _crash(backend, "intent:a", "id:a", "intent:b")
    _journal(backend).write_bytes(journal[:-2])  # its header whole, its line break lost
    state = backend.load()
    assert (set(state.trunks), set(state.intents), state.serial) == ({"a"}, set(), 2)


# --- a first run killed inside its first append -----------------------------------------------


def test_a_journal_with_no_sound_record_and_no_file_is_no_state(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    journal = _crash(backend, "intent:a")
    _journal(backend).write_bytes(journal[: len(journal) // 2])  # its only record torn
    assert not backend.exists()  # a saved plan says "no state", as apply will find
    assert (backend.load().serial, backend.load().trunks, backend.load().intents) == (0, {}, {})
    with backend.lock(timeout=0, command="next") as locked:
        assert not locked.existed
        assert not _journal(backend).exists()  # dropped: it recorded nothing
    assert not backend.exists()


def test_a_first_run_journal_with_a_sound_record_is_a_state(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _crash(backend, "intent:a")
    assert backend.exists()
    assert set(backend.load().intents) == {"a"}
    assert backend.load().lineage == backend.load().lineage


def test_a_damaged_journal_with_no_file_counts_as_a_state_so_reading_it_fails(
    tmp_path: Path,
) -> None:
    backend = _backend(tmp_path)
    journal = _crash(backend, "intent:a", "intent:b")
    _journal(backend).write_bytes(b"XXXX" + journal[4:])
    assert backend.exists()
    with pytest.raises(StateError, match="corrupt"):
        backend.load()


# --- readers racing a fold --------------------------------------------------------------------

FOLDER = """
import sys
from pathlib import Path
from trunksync.backends.local import LocalBackend
with LocalBackend(Path(sys.argv[1])).lock(timeout=0, command="trunksync apply"):
    pass  # taking the lock folds the pending journal into trunks.json
"""


def _fold_in_another_process(backend: LocalBackend) -> None:
    subprocess.run([sys.executable, "-c", FOLDER, str(backend.path)], check=True)


def _between_the_file_and_the_journal(
    monkeypatch: pytest.MonkeyPatch, *interleave: Callable[[], object]
) -> None:
    """Run `interleave` once, after the reader's first read of the file and before its
    read of the journal: the window a writer's fold can land in."""
    original = filejournal.read_journal
    pending = list(interleave)

    def read_journal(path: Path) -> filejournal.Scan:
        while pending:
            pending.pop(0)()
        return original(path)

    monkeypatch.setattr(filejournal, "read_journal", read_journal)


def test_a_reader_racing_a_fold_still_sees_the_folded_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    _crash(backend, "intent:a", "id:a")
    _between_the_file_and_the_journal(monkeypatch, lambda: _fold_in_another_process(backend))
    state = backend.load()
    assert not _journal(backend).exists()  # the fold did land in the window
    assert (state.trunks["a"].trunk_id, state.serial) == ("ST_a", 3)


def test_a_reader_racing_a_fold_and_the_next_run_sees_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file with the next run's journal would look like a foreign pair."""
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    _crash(backend, "intent:a", "id:a")
    _between_the_file_and_the_journal(
        monkeypatch, lambda: _fold_in_another_process(backend), lambda: _crash(backend, "id:b")
    )
    state = backend.load()
    assert (sorted(state.trunks), state.serial) == (["Base", "a", "b"], 4)


def test_a_reader_gives_up_with_one_error_if_the_file_keeps_changing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    current = backend.path.read_bytes()
    replace = [lambda: atomic_write(backend.path, current)] * (READ_ATTEMPTS * 2)
    original = filejournal.read_journal

    def read_journal(path: Path) -> filejournal.Scan:
        replace.pop()()
        return original(path)

    monkeypatch.setattr(filejournal, "read_journal", read_journal)
    with pytest.raises(StateError, match=f"replaced {READ_ATTEMPTS} times while it was being read"):
        backend.load()
    assert len(replace) == READ_ATTEMPTS  # bounded


# --- a crash's journal under a replaced trunks.json -------------------------------------------


def _clone(backend: LocalBackend, to: Path) -> LocalBackend:
    """A second checkout of the state folder (git clone)."""
    shutil.copytree(backend.path.parent, to / "state")
    return LocalBackend(to / "state" / "trunks.json")


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.mark.parametrize(
    ("steps", "held"),
    [
        (("intent:a", "id:a"), "trunk ids ST_a"),
        (("intent:a", "id:a", "intent:b"), "trunk ids ST_a; open intents for b"),
    ],
)
def test_a_same_lineage_file_pulled_over_a_crash_journal_is_refused_naming_what_it_holds(
    tmp_path: Path, steps: tuple[str, ...], held: str
) -> None:
    """A's apply is killed; CI reached the same serials with other changes; A pulls."""
    mine = _backend(tmp_path / "a")
    _commit(mine, _create("Base", "ST_base"))
    ci = _clone(mine, tmp_path / "ci")
    written_on = mine.path.read_bytes()
    journal = _crash(mine, *steps)
    _commit(ci, _create("Other", "ST_other"), _create("Other2", "ST_other2"))
    shutil.copy(ci.path, mine.path)  # git pull: same lineage, serial 3, not A's changes
    files = _files(mine.path.parent)

    with pytest.raises(StateError) as caught:
        mine.load()
    message = str(caught.value)
    assert "written on top of another version of" in message
    assert held in message
    assert str(_journal(mine)) in message
    assert f"mv {_journal(mine)} {_journal(mine)}.bad" in message
    assert "\n" not in message
    with pytest.raises(StateError, match="another version"), mine.lock(timeout=0, command="x"):
        pytest.fail("a journal written on another file was folded")
    assert _files(mine.path.parent) == files
    assert _journal(mine).read_bytes() == journal

    # The first way out the message gives: the file it was written on, back.
    mine.path.write_bytes(written_on)
    assert mine.load().trunks["a"].trunk_id == "ST_a"
    with mine.lock(timeout=0, command="next") as locked:
        assert not _journal(mine).exists()
        assert locked.state.trunks["a"].trunk_id == "ST_a"


def test_a_journal_whose_fold_died_before_the_unlink_is_known_as_folded(tmp_path: Path) -> None:
    """The next command's fold of a crash's journal, itself killed after writing the file."""
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    _crash(backend, "intent:a", "id:a")
    _journal(backend).write_bytes(_journal(backend).read_bytes() + b"TSJ1 90 ab")  # torn
    run = subprocess.run([sys.executable, "-c", FOLD_THEN_DIE, str(backend.path), "unlink"])
    assert run.returncode == 137
    folded = backend.path.read_bytes()
    assert json.loads(folded)["serial"] == 3
    assert _journal(backend).exists()  # its torn tail cut off, a fold mark after its records
    history = backend.history()

    assert backend.load().to_json() == folded
    with backend.lock(timeout=0, command="next") as locked:
        assert locked.state.to_json() == folded
        assert not _journal(backend).exists()
    assert backend.path.read_bytes() == folded
    assert backend.history() == history  # nothing folded twice


def test_a_fold_killed_between_its_mark_and_the_file_is_folded_again(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"))
    _crash(backend, "intent:a", "id:a")
    before = backend.path.read_bytes()
    run = subprocess.run([sys.executable, "-c", FOLD_THEN_DIE, str(backend.path), "write"])
    assert run.returncode == 137
    assert backend.path.read_bytes() == before  # the mark names a file never written
    assert backend.load().trunks["a"].trunk_id == "ST_a"
    with backend.lock(timeout=0, command="next") as locked:
        assert locked.state.trunks["a"].trunk_id == "ST_a"
    assert json.loads(backend.path.read_text())["serial"] == 3


FOLD_THEN_DIE = """
import os, sys
from pathlib import Path
from trunksync import state
from trunksync.backends import filejournal
from trunksync.backends.local import LocalBackend

def die(*args: object) -> None:
    os._exit(137)

if sys.argv[2] == "unlink":
    filejournal.remove_journal = die  # killed once the file and the history are written
else:
    state.StateStore.write_bytes = die  # killed once the fold mark is written
with LocalBackend(Path(sys.argv[1])).lock(timeout=0, command="folds"):
    pass  # taking the lock folds the crash's journal
"""


def test_a_journal_without_a_base_keeps_the_serial_rule(tmp_path: Path) -> None:
    """Written by a trunksync before base digests, left by a fold that died before the
    unlink: the records the file has are folded already."""
    backend = _backend(tmp_path)
    _commit(backend, _create("Base", "ST_base"), _create("a", "ST_a"))
    lineage = backend.load().lineage
    records = [
        JournalRecord(lineage, serial, T0, "me", tuple(_create(name, f"ST_{name}")))
        for serial, name in ((2, "a"), (3, "b"))
    ]
    _journal(backend).write_bytes(b"".join(encode_record(record) for record in records))
    assert sorted(backend.load().trunks) == ["Base", "a", "b"]
    with backend.lock(timeout=0, command="next") as locked:
        assert locked.state.serial == 3
    assert not _journal(backend).exists()


def test_a_journal_records_the_digest_of_the_file_it_is_written_on(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    with backend.lock(timeout=0, command="first") as locked:
        locked.commit(_create("a", "ST_a"))
        locked.commit(_create("b", "ST_b"))
        first = scan(_journal(backend).read_bytes(), _journal(backend))
    assert [record.base for record in first.records] == ["none", None]
    with backend.lock(timeout=0, command="second") as locked:
        locked.commit(_create("c", "ST_c"))
        (record,) = scan(_journal(backend).read_bytes(), _journal(backend)).records
    expected = hashlib.sha256(backend.path.with_name("trunks.json.backup").read_bytes())
    assert record.base == "sha256:" + expected.hexdigest()
