"""The local file backend: journal per commit, fold at the end of the lock, crash recovery,
symlinks, modes, one-line OS errors, history, seed and mark_moved."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest

from trunksync.backends import BackendIdentity, open_backend
from trunksync.backends.filejournal import JournalRecord, encode_record, scan
from trunksync.backends.local import LocalBackend
from trunksync.changes import (
    ForgetTrunk,
    RecordId,
    RecordIntent,
    Retire,
    StateChange,
    change_to_json,
)
from trunksync.errors import LockError, StateError
from trunksync.state import Intent, RetiredTrunk, State

T0 = "2024-01-15T10:00:00.000000Z"


def _intent(trunk_type: str = "exotel") -> Intent:
    return Intent(
        trunk_type=trunk_type,  # type: ignore[arg-type]
        config={"exotel_number": "+918044319240"},
        request_fingerprint="hmac-sha256:00:11",
        started_at=T0,
    )


def _create(index: int) -> list[StateChange]:
    """What apply commits for one create: the intent, then the id (one batch here)."""
    name = f"Trunk {index}"
    intent = _intent()
    return [RecordIntent(name, intent), RecordId(name, intent.record(f"ST_{index:06d}", T0))]


def _backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "state" / "trunks.json")


def _journal(backend: LocalBackend) -> Path:
    return backend.path.with_name("trunks.json.journal")


def _commit_creates(backend: LocalBackend, indexes: range) -> None:
    with backend.lock(timeout=0, command="test") as locked:
        for index in indexes:
            locked.commit(_create(index))


def _listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- journal round trip -----------------------------------------------------------------------


def test_commits_go_to_the_journal_and_fold_once_at_the_end(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(2))  # an existing state file
    before = backend.path.read_bytes()
    with backend.lock(timeout=0, command="test") as locked:
        assert locked.existed
        for index in range(2, 5):
            locked.commit(_create(index))
        # Durable in the journal, one record per batch; the reviewable file untouched.
        records = scan(_journal(backend).read_bytes(), _journal(backend)).records
        assert [record.serial for record in records] == [3, 4, 5]
        assert backend.path.read_bytes() == before
        assert locked.state.serial == 5
        assert set(locked.state.trunks) == {f"Trunk {i}" for i in range(5)}
    assert not _journal(backend).exists()
    on_disk = json.loads(backend.path.read_text())
    assert on_disk["serial"] == 5
    assert sorted(on_disk["trunks"]) == [f"Trunk {i}" for i in range(5)]
    assert on_disk["intents"] == {}
    assert backend.load() == State.model_validate(on_disk)


def test_a_journal_record_holds_length_checksum_lineage_serial_and_changes(
    tmp_path: Path,
) -> None:
    backend = _backend(tmp_path)
    with backend.lock(timeout=0, command="test") as locked:
        locked.commit(_create(7))
        header, payload, rest = _journal(backend).read_bytes().split(b"\n")
        magic, length, digest = header.split(b" ")
        assert (magic, int(length), rest) == (b"TSJ1", len(payload), b"")
        assert len(digest) == 64
        body = json.loads(payload)
        assert body["lineage"] == locked.state.lineage
        assert body["serial"] == 1
        assert body["changes"] == [change_to_json(c) for c in _create(7)]


def test_an_empty_batch_writes_nothing(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    with backend.lock(timeout=0, command="test") as locked:
        locked.commit([])
        assert locked.state.serial == 0
    assert not backend.path.exists()
    assert not _journal(backend).exists()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_an_error_inside_the_lock_still_folds(tmp_path: Path, stop: type[BaseException]) -> None:
    backend = _backend(tmp_path)
    with pytest.raises(stop), backend.lock(timeout=0, command="test") as locked:
        locked.commit(_create(1))
        raise stop()
    assert not _journal(backend).exists()
    assert set(json.loads(backend.path.read_text())["trunks"]) == {"Trunk 1"}


DIES_BEFORE_THE_UNLINK = """
import os, sys
from pathlib import Path
from trunksync.backends import filejournal
from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordId, RecordIntent
from trunksync.state import Intent

filejournal.remove_journal = lambda store: os._exit(137)  # killed after the file is written
intent = Intent(trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z")
with LocalBackend(Path(sys.argv[1])).lock(timeout=0, command="dies") as locked:
    for name in ("Trunk 1", "Trunk 2"):
        locked.commit([RecordIntent(name, intent)])
        locked.commit([RecordId(name, intent.record("ST_" + name[-1], "2024-01-15T10:00:01Z"))])
"""


def test_folding_twice_is_harmless(tmp_path: Path) -> None:
    """A fold that wrote the file but died before removing the journal."""
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    run = subprocess.run([sys.executable, "-c", DIES_BEFORE_THE_UNLINK, str(backend.path)])
    assert run.returncode == 137
    assert _journal(backend).exists()
    folded = backend.path.read_bytes()
    assert json.loads(folded)["serial"] == 5
    history = backend.history()

    assert backend.load().to_json() == folded  # a reader knows the journal is folded
    with backend.lock(timeout=0, command="test"):
        pass
    assert backend.path.read_bytes() == folded
    assert not _journal(backend).exists()
    assert backend.history() == history  # nothing new was folded


# --- crash recovery ---------------------------------------------------------------------------


def _crash_leaves_journal(backend: LocalBackend, indexes: range) -> bytes:
    """Commit under the lock and return the journal as a crash would have left it."""
    with backend.lock(timeout=0, command="test") as locked:
        for index in indexes:
            locked.commit(_create(index))
        journal = _journal(backend).read_bytes()
    return journal


def _restore_crash(backend: LocalBackend, file_bytes: bytes | None, journal: bytes) -> None:
    if file_bytes is None:
        backend.path.unlink()
        backend.path.with_name("trunks.json.backup").unlink(missing_ok=True)
    else:
        backend.path.write_bytes(file_bytes)
    _journal(backend).write_bytes(journal)


def test_a_reader_replays_a_crash_journal_in_memory_and_writes_nothing(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    journal = _crash_leaves_journal(backend, range(1, 4))
    _restore_crash(backend, before, journal)
    listing = _listing(backend.path.parent)

    state = backend.load()
    assert state.serial == 4
    assert set(state.trunks) == {f"Trunk {i}" for i in range(4)}
    assert backend.path.read_bytes() == before
    assert _journal(backend).read_bytes() == journal
    assert _listing(backend.path.parent) == listing


def test_the_next_lock_folds_a_crash_journal_first(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    journal = _crash_leaves_journal(backend, range(1, 3))
    _restore_crash(backend, before, journal)

    with backend.lock(timeout=0, command="next run") as locked:
        assert not _journal(backend).exists()  # folded before the block runs
        assert json.loads(backend.path.read_text())["serial"] == 3
        assert set(locked.state.trunks) == {"Trunk 0", "Trunk 1", "Trunk 2"}


def test_a_crash_fold_is_in_the_history_under_the_crashed_run(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    journal = _crash_leaves_journal(backend, range(1, 3))
    _restore_crash(backend, before, journal)
    (tmp_path / "state" / "trunks.json.history").write_bytes(b"")
    with backend.lock(timeout=0, command="next"):
        pass
    (entry,) = backend.history()
    assert entry.serial == 3
    assert entry.summary.startswith("2 recorded (folded after an interrupted run by ")
    assert entry.actor == scan(journal, _journal(backend)).records[-1].actor


def test_a_first_run_that_crashed_before_any_fold_is_recovered(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    journal = _crash_leaves_journal(backend, range(2))
    lineage = json.loads(backend.path.read_text())["lineage"]
    _restore_crash(backend, None, journal)

    assert backend.exists()
    state = backend.load()
    assert (state.lineage, state.serial, len(state.trunks)) == (lineage, 2, 2)
    with backend.lock(timeout=0, command="next") as locked:
        assert locked.existed
        assert locked.state.lineage == lineage


@pytest.mark.parametrize("cut", [1, 10, 60, -40, -1])
def test_a_torn_last_record_is_dropped(tmp_path: Path, cut: int) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    journal = _crash_leaves_journal(backend, range(1, 4))
    last = journal.rindex(b"TSJ1 ")
    torn = journal[: last + cut] if cut > 0 else journal[:cut]
    _restore_crash(backend, before, torn)

    assert backend.load().serial == 3  # the third record is gone, the first two kept
    with backend.lock(timeout=0, command="next") as locked:
        assert set(locked.state.trunks) == {"Trunk 0", "Trunk 1", "Trunk 2"}
        locked.commit(_create(9))  # appends cleanly after the recovery
    assert json.loads(backend.path.read_text())["serial"] == 4


def test_a_torn_last_record_whose_bytes_are_garbage_is_dropped(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    journal = _crash_leaves_journal(backend, range(2))
    last = journal.rindex(b"TSJ1 ")
    header_end = journal.index(b"\n", last) + 1
    # A crash can leave the tail's blocks allocated but zero-filled.
    zeroed = journal[:header_end] + b"\0" * (len(journal) - header_end)
    _restore_crash(backend, None, zeroed)
    assert backend.load().serial == 1


@pytest.mark.parametrize("zeros", [1, 127, 128, 4096])
def test_a_tail_of_zeros_after_the_last_record_is_a_torn_write(tmp_path: Path, zeros: int) -> None:
    # Power lost after the file's new size was durable but not its data (XFS can do
    # this): the unsynced last append reads as zeros, however many blocks it was.
    backend = _backend(tmp_path)
    journal = _crash_leaves_journal(backend, range(2))
    _restore_crash(backend, None, journal + b"\0" * zeros)
    assert backend.load().serial == 2
    with backend.lock(timeout=0, command="next") as locked:
        assert set(locked.state.trunks) == {"Trunk 0", "Trunk 1"}
        locked.commit(_create(9))  # appends cleanly after the recovery
    assert json.loads(backend.path.read_text())["serial"] == 3


def _files(folder: Path) -> dict[str, bytes]:
    """Every file's content, but the lock's own (empty) file."""
    return {
        path.name: path.read_bytes()
        for path in folder.iterdir()
        if path.is_file() and not path.name.endswith(".lock")
    }


@pytest.mark.parametrize("damage", ["checksum", "garbage header", "truncated middle"])
def test_corruption_before_the_last_record_is_refused_and_nothing_changes(
    tmp_path: Path, damage: str
) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    journal = _crash_leaves_journal(backend, range(1, 4))
    second = journal.index(b"TSJ1 ", 1)
    if damage == "checksum":
        broken = journal.replace(b"Trunk 1", b"Trunk X", 1)
    elif damage == "garbage header":
        broken = journal[:second] + b"XXXX" + journal[second + 4 :]
    else:
        broken = journal[: second - 5] + journal[second:]
    _restore_crash(backend, before, broken)
    files = _files(backend.path.parent)

    with pytest.raises(StateError, match=r"corrupt at byte \d+ .*mv .*\.bad"):
        backend.load()
    with pytest.raises(StateError, match="corrupt"), backend.lock(timeout=0, command="x"):
        pytest.fail("a corrupt journal was accepted")
    assert _files(backend.path.parent) == files
    # The lock was released despite the refusal.
    with filelock.FileLock(str(backend.path.with_name("trunks.json.lock")), timeout=0):
        pass


def test_a_journal_of_another_lineage_is_refused(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    foreign = _crash_leaves_journal(LocalBackend(tmp_path / "other" / "trunks.json"), range(1))
    _commit_creates(backend, range(1))
    _journal(backend).write_bytes(foreign)
    with pytest.raises(StateError, match=r"belongs to lineage .* the state file was replaced"):
        backend.load()
    with pytest.raises(StateError, match="lineage"), backend.lock(timeout=0, command="x"):
        pass
    assert _journal(backend).read_bytes() == foreign


def test_an_older_file_under_a_newer_journal_is_refused(tmp_path: Path) -> None:
    """A git checkout of an older trunks.json next to a newer journal."""
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    old = backend.path.read_bytes()
    _commit_creates(backend, range(1, 2))
    journal = _crash_leaves_journal(backend, range(2, 3))  # serial 3, the file had 2
    _restore_crash(backend, old, journal)  # the file now says serial 1
    with pytest.raises(StateError, match="written on top of another version of"):
        backend.load()


def test_a_serial_gap_in_a_journal_without_a_base_is_refused(tmp_path: Path) -> None:
    """A journal of a trunksync before base digests still goes by the serials."""
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    lineage = backend.load().lineage
    record = JournalRecord(lineage, 3, T0, "me", tuple(_create(3)))
    _journal(backend).write_bytes(encode_record(record))
    with pytest.raises(StateError, match="continues at serial 3 but the state needs 2"):
        backend.load()


def test_records_out_of_order_are_refused(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    lineage = backend.load().lineage
    records = [JournalRecord(lineage, n, T0, "me", tuple(_create(n))) for n in (1, 3)]
    backend.path.parent.mkdir()
    _journal(backend).write_bytes(b"".join(encode_record(r) for r in records))
    with pytest.raises(StateError, match="serial"):
        backend.load()


CRASHER = """
import sys
from pathlib import Path
from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordId, RecordIntent
from trunksync.state import Intent

intent = Intent(trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z")
with LocalBackend(Path(sys.argv[1])).lock(timeout=0, command="crasher") as locked:
    index = 0
    while True:
        name = f"Trunk {index}"
        locked.commit([RecordIntent(name, intent)])
        locked.commit([RecordId(name, intent.record(f"ST_{index:06d}", "2024-01-15T10:00:01Z"))])
        print(index, flush=True)
        index += 1
"""


def test_kill_9_mid_commit_loses_nothing_reported(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    reported = -1
    try:
        for line in process.stdout:
            reported = int(line)
            if reported >= 40:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert reported >= 40

    state = LocalBackend(path).load()
    # Every id reported durable is there; at most the create being written is an intent.
    assert {f"Trunk {i}" for i in range(reported + 1)} <= set(state.trunks)
    assert set(state.intents) <= {f"Trunk {len(state.trunks)}"}
    assert not path.exists() or json.loads(path.read_text())["serial"] < state.serial
    with LocalBackend(path).lock(timeout=0, command="next") as locked:  # the lock is free
        assert locked.state == state
    assert not _journal(LocalBackend(path)).exists()


# --- symlinks, modes --------------------------------------------------------------------------


def test_a_symlinked_state_is_written_through_and_the_link_kept(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "prod.json"
    link = tmp_path / "state" / "trunks.json"
    _commit_creates(LocalBackend(real), range(1))
    link.parent.mkdir()
    link.symlink_to(real)

    via_link = LocalBackend(link)
    assert via_link.identity() == BackendIdentity("local", str(link))
    _commit_creates(via_link, range(1, 3))
    assert link.is_symlink()
    assert set(json.loads(real.read_text())["trunks"]) == {"Trunk 0", "Trunk 1", "Trunk 2"}
    assert _listing(link.parent) == ["trunks.json"]  # journal, backup, lock beside the real file
    assert "prod.json.backup" in _listing(real.parent)

    # Two paths to one state take one lock.
    with (
        via_link.lock(timeout=0, command="via link"),
        pytest.raises(LockError, match="via link"),
        LocalBackend(real).lock(timeout=0, command="direct"),
    ):
        pass


def test_a_new_state_honours_the_umask(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    old = os.umask(0o027)
    try:
        _commit_creates(backend, range(1))
    finally:
        os.umask(old)
    for name in ("trunks.json", "trunks.json.history", "trunks.json.lock"):
        assert stat.S_IMODE(backend.path.with_name(name).stat().st_mode) == 0o640, name


def test_an_existing_state_keeps_its_mode_and_so_do_its_journal_and_history(
    tmp_path: Path,
) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    os.chmod(backend.path, 0o600)
    with backend.lock(timeout=0, command="test") as locked:
        locked.commit(_create(1))
        assert stat.S_IMODE(_journal(backend).stat().st_mode) == 0o600
    assert stat.S_IMODE(backend.path.stat().st_mode) == 0o600


# --- OS errors are one line -------------------------------------------------------------------


def _one_line_state_error(error: StateError, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_state_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a folder")
    backend = _backend(tmp_path)
    with pytest.raises(StateError) as caught:
        backend.load()
    _one_line_state_error(caught.value, "cannot read state", "Not a directory")
    with pytest.raises(StateError) as caught, backend.lock(timeout=0, command="x"):
        pass
    _one_line_state_error(caught.value, "cannot create the state folder")
    assert (tmp_path / "state").read_text() == "not a folder"


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_a_journal_that_cannot_be_written_is_one_state_error_and_nothing_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    before = backend.path.read_bytes()
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    with pytest.raises(StateError) as caught, backend.lock(timeout=0, command="t") as locked:
        monkeypatch.setattr(os, "fsync", failing)
        try:
            locked.commit(_create(1))
        finally:
            monkeypatch.setattr(os, "fsync", real_fsync)
    _one_line_state_error(caught.value, "cannot write the state journal", os.strerror(code))
    assert backend.path.read_bytes() == before  # the failed batch did not count
    assert set(backend.load().trunks) == {"Trunk 0"}


def test_a_failed_first_append_leaves_no_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with backend.lock(timeout=0, command="t") as locked:
        monkeypatch.setattr(os, "fsync", failing)
        with pytest.raises(StateError, match="Input/output error"):
            locked.commit(_create(1))
        monkeypatch.undo()
    assert not _journal(backend).exists()
    assert not backend.path.exists()


def test_a_failed_append_is_cut_back_so_the_next_commit_is_sound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    real_write = os.write
    calls: list[int] = []

    def half_then_fail(fd: int, data: bytes | memoryview) -> int:
        calls.append(fd)
        if len(calls) == 2:  # the second record: half of it lands, then the disk fills
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with backend.lock(timeout=0, command="t") as locked:
        monkeypatch.setattr(os, "write", half_then_fail)
        locked.commit(_create(1))
        with pytest.raises(StateError, match="No space left"):
            locked.commit(_create(2))
        locked.commit(_create(3))
        monkeypatch.setattr(os, "write", real_write)
        assert len(scan(_journal(backend).read_bytes(), _journal(backend)).records) == 2
    assert set(backend.load().trunks) == {"Trunk 1", "Trunk 3"}


def test_a_failed_fold_keeps_the_journal_for_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))

    def full_disk(path: Path, data: bytes, durable: bool = True) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with (
        pytest.raises(StateError, match="cannot write the state"),
        backend.lock(timeout=0, command="t") as locked,
    ):
        locked.commit(_create(1))
        monkeypatch.setattr("trunksync.state.atomic_write", full_disk)
    monkeypatch.undo()
    assert _journal(backend).exists()
    assert set(backend.load().trunks) == {"Trunk 0", "Trunk 1"}  # replayed
    with backend.lock(timeout=0, command="next"):
        pass
    assert not _journal(backend).exists()


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="trunksync-nobody-"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


AS_NOBODY = """
import os, sys
from pathlib import Path
# Import everything first: the interpreter's own files may be readable by root only.
import filelock
from trunksync.backends.local import LocalBackend
from trunksync.changes import RecordIntent
from trunksync.errors import TrunksyncError
from trunksync.state import Intent
os.setgid(65534)
os.setuid(65534)
backend = LocalBackend(Path(sys.argv[1]))
intent = Intent(trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z")
try:
    if sys.argv[2] == "load":
        backend.load()
    else:
        with backend.lock(timeout=0, command="nobody") as locked:
            locked.commit([RecordIntent("x", intent)])
except TrunksyncError as error:
    print("Error:", error)
    sys.exit(1)
print("no error")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
@pytest.mark.parametrize(
    ("setup", "action", "expected"),
    [
        ("read-only folder", "lock", "Permission denied"),
        ("unreadable file", "load", "cannot read state"),
    ],
)
def test_unwritable_states_as_an_unprivileged_user(
    shared_folder: Path, setup: str, action: str, expected: str
) -> None:
    folder = shared_folder / "state"
    path = folder / "trunks.json"
    _commit_creates(LocalBackend(path), range(1))
    before = path.read_bytes()
    if setup == "unreadable file":
        os.chmod(path, 0o600)
    src = str(Path(__file__).resolve().parents[1] / "src")
    result = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, str(path), action],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": src},
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert result.stdout.startswith("Error: ") and expected in result.stdout
    assert result.stdout.count("\n") == 1
    assert path.read_bytes() == before


# --- history, seed, mark_moved ----------------------------------------------------------------


def test_history_lists_folds_newest_first(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    assert backend.history() == []
    _commit_creates(backend, range(3))
    with backend.lock(timeout=0, command="t") as locked:
        locked.commit([ForgetTrunk("Trunk 0", "ST_000000")])
        locked.commit([Retire("ST_999999", RetiredTrunk(name="Old", since=T0))])
        locked.commit([RecordIntent("Pending", _intent())])
    newest, oldest = backend.history()
    assert (newest.serial, oldest.serial) == (6, 3)
    assert oldest.summary == "3 recorded"
    assert newest.summary == "1 forgotten, 1 retired, 1 intents open"
    assert "@" in newest.actor
    assert backend.history(limit=1) == [newest]


def test_history_names_the_ci_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/trunks")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    assert "https://github.com/acme/trunks/actions/runs/42" in backend.history()[0].actor
    with (
        backend.lock(timeout=0, command="trunksync apply"),
        pytest.raises(LockError, match=r"CI run https://github.com/acme/trunks/actions"),
        backend.lock(timeout=0, command="second"),
    ):
        pass


def test_seed_keeps_lineage_and_serial_and_refuses_a_non_empty_target(tmp_path: Path) -> None:
    source = _backend(tmp_path)
    _commit_creates(source, range(3))
    state = source.load()
    target = LocalBackend(tmp_path / "copy" / "trunks.json")
    target.seed(state, command="trunksync state migrate")
    assert target.load() == state
    assert target.history()[0].summary == "migrated in"
    with pytest.raises(StateError, match="already exists"):
        target.seed(state, command="again")


def test_a_moved_state_is_refused_naming_where_it_went(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    _commit_creates(backend, range(1))
    to = BackendIdentity("postgresql", "db.example:5432/trunks", "prod")
    backend.mark_moved(to, command="trunksync state migrate")
    assert json.loads(backend.path.read_text())["moved_to"] == str(to)
    for attempt in (backend.load, lambda: backend.lock(timeout=0, command="x").__enter__()):
        with pytest.raises(StateError, match=r"moved to postgresql db.example:5432/trunks"):
            attempt()
    with pytest.raises(StateError, match="moved"):
        backend.mark_moved(to, command="again")
    with pytest.raises(StateError, match="already exists"):
        backend.seed(State.new(), command="migrate back")


def test_open_backend_gives_the_local_backend_for_a_path(tmp_path: Path) -> None:
    backend = open_backend(str(tmp_path / "s.json"))
    assert isinstance(backend, LocalBackend)
    assert backend.identity().kind == "local"


def test_identity_is_the_path_as_given_so_a_plan_moves_between_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two CI jobs check the repository out at different absolute paths.
    first, second = tmp_path / "job-1", tmp_path / "job-2"
    first.mkdir(), second.mkdir()
    monkeypatch.chdir(first)
    here = LocalBackend(Path("./state/../state/trunks.json")).identity()
    monkeypatch.chdir(second)
    there = LocalBackend(Path("state/trunks.json")).identity()
    assert here == there == BackendIdentity("local", "state/trunks.json")
