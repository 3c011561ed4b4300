"""Journal.commit: every change is on disk when commit returns, even under concurrency."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trunksync.journal import Journal
from trunksync.state import Intent, State, StateStore, TrunkRecord, parse_state

WORKERS = 50


def _intent() -> Intent:
    return Intent(
        trunk_type="exotel",
        request_fingerprint="hmac-sha256:00:00",
        started_at="2024-01-15T10:00:00Z",
    )


def _record(index: int) -> TrunkRecord:
    return TrunkRecord(
        trunk_id=f"ST_{index:03d}",
        trunk_type="exotel",
        config={"exotel_number": f"+9180{index:08d}"},
        created_at="2024-01-15T10:00:00.000000Z",
    )


def _on_disk(store: StateStore) -> State:
    return parse_state(store.path.read_bytes(), store.path)


def test_single_commit_is_on_disk_when_it_returns(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())
    journal.commit(lambda state: state.intents.__setitem__("a", _intent()))
    disk = _on_disk(store)
    assert "a" in disk.intents
    assert disk.serial == journal.state.serial == 1
    journal.commit(lambda state: state.intents.pop("a"))
    disk = _on_disk(store)
    assert disk.intents == {}
    assert disk.serial == 2


def test_concurrent_commits_all_reach_the_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())
    seen_after_commit: dict[int, bool] = {}

    def worker(index: int) -> None:
        name = f"trunk-{index:03d}"
        journal.commit(lambda state: state.trunks.__setitem__(name, _record(index)))
        # Right after commit returns, the file on disk must already hold this change.
        disk = json.loads(store.path.read_bytes())
        seen_after_commit[index] = disk["trunks"].get(name, {}).get("trunk_id") == f"ST_{index:03d}"

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(worker, range(WORKERS)))

    assert seen_after_commit == {index: True for index in range(WORKERS)}
    disk = _on_disk(store)
    assert sorted(disk.trunks) == [f"trunk-{index:03d}" for index in range(WORKERS)]
    assert disk == journal.state
    assert 1 <= disk.serial <= WORKERS


def test_commits_queued_during_a_write_are_written_before_they_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deterministic interleaving: the first write blocks until every other worker has
    made its change and is waiting; each of them must still see its change on disk."""
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())
    workers = 8
    all_mutated = threading.Event()
    mutated = 0
    real_write = store.write_bytes
    writes: list[bytes] = []

    def gated_write(data: bytes) -> None:
        if not writes:
            assert all_mutated.wait(timeout=60), "the other workers never queued"
        writes.append(data)
        real_write(data)

    monkeypatch.setattr(store, "write_bytes", gated_write)
    results: dict[int, bool] = {}

    def worker(index: int) -> None:
        name = f"t{index}"

        def mutation(state: State) -> None:
            nonlocal mutated
            state.intents[name] = _intent()
            mutated += 1  # runs under the journal's lock
            if mutated == workers:
                all_mutated.set()

        journal.commit(mutation)
        results[index] = name in json.loads(store.path.read_bytes())["intents"]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(worker, range(workers)))

    assert results == {index: True for index in range(workers)}
    assert set(_on_disk(store).intents) == {f"t{index}" for index in range(workers)}
    # Every write is a complete, valid state with a strictly increasing serial.
    serials = [parse_state(data, store.path).serial for data in writes]
    assert serials == sorted(set(serials))


def test_failing_write_raises_from_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())

    def failing(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_bytes", failing)
    with pytest.raises(OSError, match="No space left"):
        journal.commit(lambda state: state.intents.__setitem__("a", _intent()))
    assert not store.path.exists()


def test_failing_write_raises_to_every_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())
    workers = 10
    all_mutated = threading.Event()
    mutated = 0
    calls: list[int] = []

    def failing(data: bytes) -> None:
        calls.append(1)
        # Hold the (failing) write until every worker has queued its change behind it.
        assert all_mutated.wait(timeout=60), "the other workers never queued"
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store, "write_bytes", failing)

    def worker(index: int) -> BaseException | None:
        def mutation(state: State) -> None:
            nonlocal mutated
            state.intents[f"t{index}"] = _intent()
            mutated += 1
            if mutated == workers:
                all_mutated.set()

        try:
            journal.commit(mutation)
        except BaseException as error:
            return error
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(worker, range(workers)))

    assert all(isinstance(outcome, OSError) for outcome in outcomes), outcomes
    assert all("Input/output error" in str(outcome) for outcome in outcomes)
    assert not store.path.exists()
    assert calls  # the failing write was attempted


def test_mutation_error_propagates_and_nothing_is_written(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state" / "trunks.json")
    journal = Journal(store, store.load())

    def broken(state: State) -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        journal.commit(broken)
    assert not store.path.exists()
    journal.commit(lambda state: state.intents.__setitem__("a", _intent()))
    assert "a" in _on_disk(store).intents
