"""StateStore: loading, atomic saving with a backup, refusing bad files, and the lock."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from trunksync.errors import LockError, StateError
from trunksync.sanitize import has_unsafe_chars, printable
from trunksync.state import (
    FORMAT_VERSION,
    Intent,
    State,
    StateStore,
    TrunkRecord,
    atomic_write,
    parse_state,
)


def _record(trunk_id: str = "ST_abc") -> TrunkRecord:
    return TrunkRecord(
        trunk_id=trunk_id,
        trunk_type="exotel",
        config={"exotel_number": "+918044319240", "sip_port": 5060},
        secret_fingerprints={},
        created_at="2024-01-15T10:00:00.000000Z",
    )


def _store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state" / "trunks.json")


def _listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# --- load -------------------------------------------------------------------------------------


def test_load_missing_file_gives_empty_state_and_creates_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    loaded = store.load()
    assert loaded.serial == 0
    assert loaded.format_version == FORMAT_VERSION
    assert loaded.trunks == {} and loaded.intents == {}
    assert str(uuid.UUID(loaded.lineage)) == loaded.lineage
    assert not store.path.exists()
    assert not store.path.parent.exists()
    assert store.exists() is False


def test_two_new_states_have_distinct_lineages(tmp_path: Path) -> None:
    assert _store(tmp_path).load().lineage != _store(tmp_path).load().lineage


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = _store(tmp_path)
    current = store.load()
    current.trunks["Exotel India"] = _record()
    current.intents["Pending"] = Intent(
        trunk_type="twilio",
        request_fingerprint="hmac-sha256:00:11",
        started_at="2024-01-15T10:00:00Z",
    )
    store.save(current)
    again = StateStore(store.path).load()
    assert again == current
    assert again.trunks["Exotel India"].config["sip_port"] == 5060


# --- save -------------------------------------------------------------------------------------


def test_save_bumps_serial_each_time(tmp_path: Path) -> None:
    store = _store(tmp_path)
    current = store.load()
    store.save(current)
    assert current.serial == 1
    assert json.loads(store.path.read_bytes())["serial"] == 1
    store.save(current)
    assert current.serial == 2
    assert StateStore(store.path).load().serial == 2


def test_save_writes_sorted_key_json_with_trailing_newline(tmp_path: Path) -> None:
    store = _store(tmp_path)
    current = store.load()
    current.trunks["b"] = _record("ST_b")
    current.trunks["a"] = _record("ST_a")
    store.save(current)
    raw = store.path.read_bytes()
    assert raw.endswith(b"}\n") and not raw.endswith(b"\n\n")
    data = json.loads(raw)
    assert raw.decode() == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert list(data) == sorted(data)
    assert list(data["trunks"]) == ["a", "b"]
    assert list(data["trunks"]["a"]) == sorted(data["trunks"]["a"])


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_a_new_state_file_honours_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old_umask = os.umask(umask)
    try:
        store = _store(tmp_path)
        store.save(store.load())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(store.path.stat().st_mode) == mode


def test_first_save_of_a_new_file_makes_no_backup(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save(store.load())
    assert not store.backup_path.exists()


def test_first_write_of_an_instance_keeps_previous_version_as_backup(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    first_run = StateStore(path)
    current = first_run.load()
    first_run.save(current)
    first_run.save(current)  # same instance: still no backup (there was no earlier file)
    assert not first_run.backup_path.exists()
    before = path.read_bytes()

    second_run = StateStore(path)
    current = second_run.load()
    current.trunks["x"] = _record()
    second_run.save(current)
    assert second_run.backup_path.read_bytes() == before
    after_first_write = path.read_bytes()
    assert after_first_write != before

    current.trunks["y"] = _record("ST_y")
    second_run.save(current)
    # Later writes of the same run keep the backup from before the run.
    assert second_run.backup_path.read_bytes() == before
    assert "y" in json.loads(path.read_bytes())["trunks"]


def test_each_locked_run_of_one_instance_backs_up_the_file_from_before_it(
    tmp_path: Path,
) -> None:
    """An API user keeps one backend for many runs; each run gets its own backup."""
    store = _store(tmp_path)
    current = store.load()
    for run in range(3):
        with store.locked():
            store.save(current)  # serial run + 1
            store.save(current)  # a second write of the run keeps the run's backup
        if run == 0:
            assert not store.backup_path.exists()  # there was no file before run 0
        else:
            assert json.loads(store.backup_path.read_bytes())["serial"] == 2 * run


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    store = _store(tmp_path)
    current = store.load()
    for _ in range(3):
        store.save(current)
    StateStore(store.path).save(current)
    assert _listing(store.path.parent) == ["trunks.json", "trunks.json.backup"]


# --- refusing bad files -----------------------------------------------------------------------


def _valid_bytes() -> bytes:
    current = State.new()
    current.serial = 3
    current.trunks["Exotel India"] = _record()
    return current.to_json()


def _bad_files() -> dict[str, bytes]:
    valid = _valid_bytes()
    data = json.loads(valid)
    wrong_id = json.loads(valid)
    wrong_id["trunks"]["Exotel India"]["trunk_id"] = "abc"
    negative = dict(data, serial=-1)
    return {
        "truncated": valid[: len(valid) // 2],
        "empty": b"",
        "not-json": b"hello, world\n",
        "json-list": b"[1, 2, 3]\n",
        "trunk-id-without-ST_": json.dumps(wrong_id).encode(),
        "negative-serial": json.dumps(negative).encode(),
        "missing-lineage": json.dumps({k: v for k, v in data.items() if k != "lineage"}).encode(),
        "unknown-field": json.dumps(dict(data, surprise=1)).encode(),
        "bad-trunk-type": json.dumps(
            {**data, "trunks": {"x": {**data["trunks"]["Exotel India"], "trunk_type": "SIP!"}}}
        ).encode(),
        "format-version-0": json.dumps(dict(data, format_version=0)).encode(),
    }


@pytest.mark.parametrize("case", sorted(_bad_files()))
def test_bad_files_are_refused_and_left_unchanged(tmp_path: Path, case: str) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    raw = _bad_files()[case]
    store.path.write_bytes(raw)
    with pytest.raises(StateError) as caught:
        store.load()
    assert str(store.path) in str(caught.value)
    assert store.path.read_bytes() == raw
    assert _listing(store.path.parent) == ["trunks.json"]


def test_corrupt_message_names_the_problem_and_says_unchanged(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    data = json.loads(_valid_bytes())
    data["trunks"]["Exotel India"]["trunk_id"] = "abc"
    store.path.write_text(json.dumps(data))
    with pytest.raises(StateError) as caught:
        store.load()
    message = str(caught.value)
    assert "corrupt" in message
    assert "trunk_id" in message
    assert "not changed" in message


def test_corrupt_message_points_at_backup_when_there_is_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.backup_path.write_bytes(_valid_bytes())
    store.path.write_bytes(b"{ truncated")
    with pytest.raises(StateError) as caught:
        store.load()
    assert str(store.backup_path) in str(caught.value)


@pytest.mark.parametrize("extra", [{}, {"new_field_from_the_future": {"a": 1}}])
def test_newer_format_version_says_upgrade(tmp_path: Path, extra: dict[str, object]) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    data = dict(json.loads(_valid_bytes()), format_version=99, **extra)
    raw = json.dumps(data).encode()
    store.path.write_bytes(raw)
    with pytest.raises(StateError) as caught:
        store.load()
    message = str(caught.value)
    assert "upgrade" in message
    assert "99" in message
    assert store.path.read_bytes() == raw


DEEP = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's recursion limit


def test_a_deeply_nested_state_is_one_state_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.path.parent.mkdir(parents=True)
    raw = b'{"format_version": ' + DEEP + b"}"
    store.path.write_bytes(raw)
    with pytest.raises(StateError, match="corrupt or not a trunksync state"):
        store.load()
    assert store.path.read_bytes() == raw


def test_a_deeply_nested_backup_is_ignored_like_any_unreadable_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.save(State.new())
    store.backup_path.write_bytes(DEEP)
    assert store.load().serial == 1


def test_deeply_nested_lock_info_names_another_process(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    holder = StateStore(path)
    with holder.locked(command="trunksync apply"):
        holder.lock_info_path.write_bytes(DEEP)
        with (
            pytest.raises(LockError, match="locked by another process"),
            StateStore(path).locked(timeout=0),
        ):
            pytest.fail("the lock was acquired twice")


def test_parse_state_accepts_valid_bytes() -> None:
    parsed = parse_state(_valid_bytes(), Path("x.json"))
    assert parsed.serial == 3
    assert parsed.trunks["Exotel India"].trunk_id == "ST_abc"


def test_lineage_different_from_backup_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    StateStore(path).save(State.new())
    second = StateStore(path)
    second.save(second.load())  # now a backup with the same lineage exists
    assert second.backup_path.exists()
    StateStore(path).load()  # same lineage: fine

    foreign = State.new()
    foreign_raw = foreign.to_json()
    path.write_bytes(foreign_raw)
    with pytest.raises(StateError) as caught:
        StateStore(path).load()
    message = str(caught.value)
    assert str(second.backup_path) in message
    assert foreign.lineage in message
    assert path.read_bytes() == foreign_raw


def test_missing_state_with_existing_backup_is_refused(tmp_path: Path) -> None:
    """Starting empty would plan every recorded trunk as a new create (duplicates)."""
    path = tmp_path / "state" / "trunks.json"
    first = StateStore(path)
    current = first.load()
    current.trunks["Exotel India"] = _record()
    first.save(current)
    second = StateStore(path)
    second.save(second.load())
    backup = second.backup_path.read_bytes()
    path.unlink()
    with pytest.raises(StateError) as caught:
        StateStore(path).load()
    assert str(second.backup_path) in str(caught.value)
    assert "missing" in str(caught.value)
    assert not path.exists()
    assert second.backup_path.read_bytes() == backup


# --- atomic_write -----------------------------------------------------------------------------


def test_atomic_write_replaces_content_and_keeps_the_mode(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "f.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _listing(folder) == ["f.json"]


def test_atomic_write_leaves_no_temp_file_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "f.json"
    target.write_bytes(b"old")
    real_fsync = os.fsync
    calls: list[int] = []

    def failing_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_once)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert calls
    assert _listing(folder) == ["f.json"]
    assert target.read_bytes() == b"old"

    atomic_write(target, b"new")  # the next write works normally
    assert target.read_bytes() == b"new"
    assert _listing(folder) == ["f.json"]


def test_store_save_failure_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    current = store.load()
    store.save(current)
    before = store.path.read_bytes()

    def failing(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing)
    current.trunks["x"] = _record()
    with pytest.raises(StateError, match="No space left on device"):
        store.save(current)
    assert store.path.read_bytes() == before
    assert not any(name.endswith(".tmp") for name in _listing(store.path.parent))


# --- lock -------------------------------------------------------------------------------------


def test_second_lock_on_same_path_is_refused_with_holder_details(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    holder = StateStore(path)
    with holder.locked(command="trunksync apply"):
        info = json.loads(holder.lock_info_path.read_text())
        assert info["pid"] == os.getpid()
        with pytest.raises(LockError) as caught, StateStore(path).locked(timeout=0):
            pytest.fail("the lock was acquired twice")
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert "since" in message
        assert info["since"] in message
        assert "trunksync apply" in message
        assert str(path) in message
    # Released: the next run gets it, and the info file is gone.
    assert not holder.lock_info_path.exists()
    with StateStore(path).locked(timeout=0):
        pass


def test_lock_error_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    with StateStore(path).locked(), pytest.raises(StateError), StateStore(path).locked():
        pass


HOLDER = """
import sys
from pathlib import Path
from trunksync.state import StateStore
with StateStore(Path(sys.argv[1])).locked(command="holder"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _start_holder(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


def test_lock_held_by_another_process_is_refused_then_freed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    process = _start_holder(path)
    try:
        with pytest.raises(LockError) as caught, StateStore(path).locked(timeout=0):
            pass
        assert f"pid {process.pid}" in str(caught.value)
        assert "since" in str(caught.value)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0
    with StateStore(path).locked(timeout=0):
        pass


def test_lock_of_a_killed_holder_is_free_for_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "state" / "trunks.json"
    process = _start_holder(path)
    try:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    store = StateStore(path)
    with store.locked(timeout=0, command="next run"):
        info = json.loads(store.lock_info_path.read_text())
        assert info["pid"] == os.getpid()
        assert info["command"] == "next run"


def test_to_json_is_exactly_sorted_indented_json(tmp_path: Path) -> None:
    import json as stdlib_json

    from trunksync.state import Intent, RetiredTrunk, TrunkRecord

    state = State.new()
    state.trunks["Zürich ✓"] = TrunkRecord(
        trunk_id="ST_1", trunk_type="twilio", config={"numbers": ["+1555"], "address": "a.b"},
        secret_fingerprints={"password": "hmac-sha256:00:11"}, created_at="2024-01-15T10:00:00Z",
    )  # fmt: skip
    state.intents["A"] = Intent(
        trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z"
    )
    state.retired["ST_2"] = RetiredTrunk(name="B", since="2024-01-15T10:00:00Z")
    expected = stdlib_json.dumps(
        state.model_dump(mode="json", exclude={"moved_to"}),
        indent=2,
        sort_keys=True,
        ensure_ascii=False,
    )
    assert state.to_json() == (expected + "\n").encode()
    assert b"moved_to" not in state.to_json()  # an ordinary state's file never mentions it


def test_a_failed_write_is_a_state_error_and_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    store.save(State.new())
    before = store.path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(StateError, match=r"cannot write the state .*No space left on device"):
        store.save(store.load())
    assert store.path.read_bytes() == before


# --- what a state may hold --------------------------------------------------------------------


def _with_record(**changes: object) -> bytes:
    data = json.loads(_valid_bytes())
    data["trunks"]["Exotel India"].update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (_with_record(trunk_id="ST_a\nfake line"), "trunks.Exotel India.trunk_id"),
        (_with_record(trunk_id="XX_abc"), "trunks.Exotel India.trunk_id"),
        (_with_record(trunk_type="Twilio"), "trunks.Exotel India.trunk_type"),
        (_with_record(trunk_type="t" * 33), "trunks.Exotel India.trunk_type"),
        (_with_record(created_at="yesterday"), "trunks.Exotel India.created_at"),
    ],
)
def test_a_bad_value_in_a_record_is_a_state_error_naming_the_field(
    tmp_path: Path, raw: bytes, where: str
) -> None:
    path = tmp_path / "trunks.json"
    path.write_bytes(raw)
    with pytest.raises(StateError, match=re.escape(where)) as caught:
        StateStore(path).load()
    assert "\n" not in str(caught.value)


def test_names_with_control_characters_and_bad_retired_ids_are_refused() -> None:
    base = json.loads(_valid_bytes())
    record = base["trunks"]["Exotel India"]
    since = "2024-01-15T10:00:00Z"
    bad_name = dict(base, trunks={"Evil\x1b[2J": record})
    bad_retired_key = dict(base, retired={"ST_ok\r": {"name": "a", "since": since}})
    bad_retired_name = dict(base, retired={"ST_ok": {"name": "a\u202eb", "since": since}})
    bad_since = dict(base, retired={"ST_ok": {"name": "a", "since": "soon"}})
    for data in (bad_name, bad_retired_key, bad_retired_name, bad_since):
        with pytest.raises(StateError) as caught:
            parse_state(json.dumps(data).encode(), Path("s.json"))
        assert "\x1b" not in str(caught.value) and "\r" not in str(caught.value)


@pytest.mark.parametrize(
    "name", ["Evil\x1b[2J", "a\u202eb", "line\u2028break", "del\x7f", "c1\x85", "nul\x00"]
)
def test_a_name_with_a_control_or_bidi_character_is_named_escaped(name: str) -> None:
    # Checked by pydantic's pattern engine, with the rule of sanitize.printable.
    base = json.loads(_valid_bytes())
    base["trunks"] = {name: base["trunks"]["Exotel India"]}
    with pytest.raises(StateError) as caught:
        parse_state(json.dumps(base).encode(), Path("s.json"))
    assert "a name that holds a control or bidi character" in str(caught.value)
    assert f"trunks.{printable(name)}.[key]" in str(caught.value)
    assert not has_unsafe_chars(str(caught.value))


def test_names_in_any_script_are_plain() -> None:
    base = json.loads(_valid_bytes())
    base["trunks"] = {"Mumbai é 漢字 🙂": base["trunks"]["Exotel India"]}
    assert list(parse_state(json.dumps(base).encode(), Path("s.json")).trunks) == [
        "Mumbai é 漢字 🙂"
    ]


def test_intent_replaces_must_be_a_trunk_id() -> None:
    with pytest.raises(ValueError, match="should match pattern"):
        Intent(trunk_type="exotel", request_fingerprint="f", started_at="2024-01-15T10:00:00Z",
               replaces="ST_\n")  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("trunk_id", "ST_\n", "not a trunk id (ST_ then 1 to 64"),
        ("trunk_id", "ST_" + "a" * 65, "not a trunk id"),
        ("trunk_id", "st_abc", "not a trunk id"),
        ("trunk_type", "Exotel", "not a trunk type (a lowercase letter"),
        ("trunk_type", "exotel\n", "not a trunk type"),
    ],
)
def test_a_bad_id_or_type_in_the_file_is_named_in_trunksyncs_words(
    field: str, value: str, words: str
) -> None:
    # Checked by pydantic's pattern engine (fast); the message is still ours.
    base = json.loads(_valid_bytes())
    base["trunks"]["Exotel India"][field] = value
    with pytest.raises(StateError) as caught:
        parse_state(json.dumps(base).encode(), Path("s.json"))
    assert words in str(caught.value)
    assert f"trunks.Exotel India.{field}" in str(caught.value)


def test_any_bounded_trunk_type_is_accepted() -> None:
    record = _record().model_copy(update={"trunk_type": "telnyx"})
    parsed = parse_state(
        State(format_version=1, lineage="l", serial=1, trunks={"a": record}).to_json(),
        Path("s.json"),
    )
    assert parsed.trunks["a"].trunk_type == "telnyx"


def test_records_are_immutable() -> None:
    record = _record()
    with pytest.raises(ValueError, match="frozen"):
        record.trunk_id = "ST_other"  # type: ignore[misc]
