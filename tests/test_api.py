"""The typed Python API (trunksync.api), against the in-process emulator."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import trunksync
from emulator_fixtures import EmulatorHandle
from helpers import API_KEY, SECRET_ENV, exotel_trunks, write
from hostile_server import CREATE, HostileServer, dropped
from trunksync.apply import SEND_SLACK
from trunksync.backends.base import BackendIdentity, HistoryEntry
from trunksync.changes import StateChange, apply_changes
from trunksync.errors import TrunksyncError
from trunksync.results import Result
from trunksync.state import State


@pytest.fixture
def trunks_file(isolated: Path) -> Path:
    return write(isolated / "trunks.yaml", exotel_trunks(3))


def test_load_plan_apply_and_read_the_results(emulator: EmulatorHandle, trunks_file: Path) -> None:
    desired = trunksync.load_desired(trunks_file, env=SECRET_ENV)
    backend = trunksync.open_state("state/trunks.json")
    offline = trunksync.make_plan(desired, backend.load())
    assert [c.action for c in offline.changes] == ["create"] * 3
    seen: list[Result] = []
    with trunksync.connect(emulator.url, API_KEY) as client:
        report = trunksync.apply_plan(
            desired, backend, client, parallelism=2, on_result=seen.append
        )
        assert report.counts["created"] == 3 and report.problems == 0 and report.changed
        assert sorted(seen) == sorted(report.results)
        again = trunksync.apply_plan(desired, backend, client)
    assert again.results == [] and not again.changed
    state = backend.load()
    assert {n: r.trunk_id for n, r in state.trunks.items()} == {
        t["trunk_name"]: t["trunk_id"] for t in emulator.active_trunks()
    }
    with trunksync.connect(emulator.url, API_KEY) as client:
        remote = client.list_trunks()
    refreshed = trunksync.make_plan(desired, state, remote=remote)
    assert [c.action for c in refreshed.changes] == ["noop"] * 3


def test_apply_asks_for_the_list_once_the_lock_is_held_and_only_once(
    emulator: EmulatorHandle, trunks_file: Path
) -> None:
    # The list is asked for as soon as the lock is held (it overlaps the state's
    # load), never before; a run with no intents to resolve plans with that list.
    desired = trunksync.load_desired(trunks_file, env=SECRET_ENV)
    backend = trunksync.open_state("state/trunks.json")
    real_lock = backend.lock
    lists_when_locked: list[int] = []

    def observed_lock(**options: Any) -> Any:
        on_locked = options.pop("on_locked")

        def locked() -> None:
            lists_when_locked.append(emulator.stats()["list_calls"])
            on_locked()

        return real_lock(on_locked=locked, **options)

    backend.lock = observed_lock  # type: ignore[method-assign]
    before = emulator.stats()["list_calls"]
    with trunksync.connect(emulator.url, API_KEY) as client:
        report = trunksync.apply_plan(desired, backend, client)
    assert report.counts["created"] == 3
    assert lists_when_locked == [before]
    assert emulator.stats()["list_calls"] == before + 1


def test_apply_waits_out_the_clients_own_deadline_not_a_shorter_one(
    hostile: HostileServer, trunks_file: Path
) -> None:
    # connect(timeout=) bounds a request; apply_plan(timeout=) was a separate number.
    # Trusting "absent" after the shorter one could create a second trunk while the
    # first request may still land: the wait covers the client's deadline.
    hostile.answer(CREATE, dropped())
    desired = trunksync.load_desired(trunks_file, env=SECRET_ENV)
    waited: list[float] = []

    def cancelled_wait(seconds: float) -> bool:
        waited.append(seconds)
        return True  # stop there: the intent is kept for the next run

    frozen = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with trunksync.connect(hostile.url, API_KEY, timeout=9.0) as client:
        report = trunksync.apply_plan(
            desired,
            trunksync.open_state("state/trunks.json"),
            client,
            parallelism=1,
            timeout=0.5,
            clock=lambda: frozen,
            wait=cancelled_wait,
        )
    assert waited == [9.0 + SEND_SLACK] * 3  # one wait for each of the three trunks
    assert report.counts["unknown"] == 3


def test_a_set_cancel_token_sends_nothing(emulator: EmulatorHandle, trunks_file: Path) -> None:
    desired = trunksync.load_desired(trunks_file)
    cancel = threading.Event()
    cancel.set()
    # The client gets no token here: the platform's list is still read, and the
    # engine itself must start no create.
    with trunksync.connect(emulator.url, API_KEY) as client:
        report = trunksync.apply_plan(
            desired, trunksync.open_state("s.json"), client, cancel=cancel
        )
    assert report.interrupted and report.results == [] and report.not_started == 3
    assert emulator.stats()["create_calls"] == 0


def test_an_unapproved_plan_changes_nothing(emulator: EmulatorHandle, trunks_file: Path) -> None:
    desired = trunksync.load_desired(trunks_file)
    shown: list[int] = []

    def approve(plan: Any) -> bool:
        shown.append(len(plan.creates()))
        return False

    with (
        trunksync.connect(emulator.url, API_KEY) as client,
        pytest.raises(trunksync.ApplyCancelled),
    ):
        trunksync.apply_plan(desired, trunksync.open_state("s.json"), client, approve=approve)
    assert shown == [3]
    assert emulator.stats()["create_calls"] == 0
    assert not Path("s.json").exists()


def test_import_through_the_api(emulator: EmulatorHandle, trunks_file: Path) -> None:
    desired = trunksync.load_desired(trunks_file)
    with emulator.client() as http:
        body = {
            "trunk_name": "Trunk 00001",
            "trunk_type": "exotel",
            "trunk_config": {"exotel_number": "+918000000001"},
        }
        trunk_id = http.post("/sip/create-outbound-trunk", json=body).json()["data"]["trunk_id"]
    backend = trunksync.open_state("s.json")
    with trunksync.connect(emulator.url, API_KEY) as client:
        trunksync.import_trunk(desired, backend, client, "Trunk 00001", trunk_id)
        with pytest.raises(TrunksyncError, match="not a trunk id"):
            trunksync.import_trunk(desired, backend, client, "Trunk 00002", "ST_x\nfake")
    assert backend.load().trunks["Trunk 00001"].trunk_id == trunk_id


def test_the_api_never_imports_click_and_trunksync_loads_it_lazily(trunks_file: Path) -> None:
    script = (
        "import sys, trunksync\n"
        "assert 'trunksync.api' not in sys.modules\n"
        "d = trunksync.load_desired('trunks.yaml')\n"
        "p = trunksync.make_plan(d, trunksync.open_state('state/trunks.json').load())\n"
        "assert len(p.creates()) == 3\n"
        "assert 'click' not in sys.modules, 'the API imported click'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


class MemoryBackend:
    """A backend in memory, enough for migrate: seed, mark_moved, lock."""

    def __init__(self, name: str, state: State | None = None) -> None:
        self.name = name
        self.state = state
        self.moved_to: BackendIdentity | None = None
        self.events: list[str] = []

    def identity(self) -> BackendIdentity:
        return BackendIdentity("memory", self.name)

    def exists(self) -> bool:
        return self.state is not None

    def load(self) -> State:
        return self.state or State.new()

    @contextmanager
    def _locked(self) -> Any:
        backend = self

        class Locked:
            state = backend.load()
            existed = backend.exists()

            def commit(self, changes: Sequence[StateChange]) -> None:
                apply_changes(self.state, changes)

        backend.events.append("lock")
        yield Locked()
        backend.events.append("unlock")

    def lock(
        self, *, timeout: float, command: str, on_locked: Callable[[], None] | None = None
    ) -> AbstractContextManager[Any]:
        return self._locked()

    def history(self, limit: int = 50) -> list[HistoryEntry]:
        return [HistoryEntry(1, "t", "me", "one change")][:limit]

    def seed(self, state: State, *, command: str) -> None:
        if self.state is not None:
            raise TrunksyncError("target not empty")
        self.events.append("seed")
        self.state = state.model_copy(deep=True)

    def mark_moved(self, to: BackendIdentity, *, command: str) -> None:
        self.events.append("moved")
        self.moved_to = to

    def moved_state(self) -> State | None:
        if self.state is None or self.moved_to is None:
            return None
        return self.state.model_copy(update={"moved_to": str(self.moved_to)})


def test_migrate_keeps_lineage_and_serial_and_marks_the_source_under_its_lock() -> None:
    original = State.new()
    original.serial = 7
    source, target = MemoryBackend("a", original), MemoryBackend("b")
    assert trunksync.migrate_state(source, target) == 0  # type: ignore[arg-type]
    assert target.state is not None
    assert (target.state.lineage, target.state.serial) == (original.lineage, 7)
    assert source.events == ["lock", "moved", "unlock"]
    assert source.moved_to == target.identity()


def test_migrate_refuses_a_non_empty_target_and_leaves_the_source_live() -> None:
    source, target = MemoryBackend("a", State.new()), MemoryBackend("b", State.new())
    with pytest.raises(TrunksyncError, match="target not empty"):
        trunksync.migrate_state(source, target)  # type: ignore[arg-type]
    assert source.moved_to is None


def test_migrate_refuses_an_absent_source_or_itself() -> None:
    with pytest.raises(TrunksyncError, match="there is no state"):
        trunksync.migrate_state(MemoryBackend("a"), MemoryBackend("b"))  # type: ignore[arg-type]
    same = MemoryBackend("a", State.new())
    with pytest.raises(TrunksyncError, match="the same state"):
        trunksync.migrate_state(same, same)  # type: ignore[arg-type]


def test_the_script_in_docs_python_api_runs(emulator: EmulatorHandle, trunks_file: Path) -> None:
    text = (Path(__file__).parent.parent / "docs" / "python-api.md").read_text()
    script = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "http://127.0.0.1:8080" in script and '"test-key"' in script
    printed: list[str] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    exec(compile(script.replace("http://127.0.0.1:8080", emulator.url), "doc", "exec"), namespace)
    assert namespace["report"].counts["created"] == 3
    assert len(emulator.active_trunks()) == 3
    assert printed[-1].startswith("{'Trunk 00000': 'ST_")


def test_history_is_read_without_the_lock_and_empty_without_a_state() -> None:
    # Each batch's entry is written with the batch: no lock is needed to read whole
    # ones, and a read-only role or a moved state could not take it.
    backend = MemoryBackend("a", State.new())
    assert trunksync.state_history(backend, 5) == [  # type: ignore[arg-type]
        HistoryEntry(1, "t", "me", "one change")
    ]
    assert backend.events == []
    assert trunksync.state_history(MemoryBackend("b")) == []  # type: ignore[arg-type]


def test_a_saved_plan_records_the_state_it_was_computed_on(trunks_file: Path) -> None:
    # A second read of the backend could see a run that landed after the plan was
    # made, and the apply-time staleness check would compare against that run.
    desired = trunksync.load_desired(trunks_file, env=SECRET_ENV)
    backend = trunksync.open_state("state/trunks.json")
    planned_on = State.new()
    planned_on.serial = 7
    options = trunksync.make_options(desired, planned_on)
    the_plan = trunksync.make_plan(desired, planned_on, options=options)

    def document(**planned: Any) -> dict[str, Any]:
        return trunksync.plan_document(
            the_plan,
            desired=desired,
            backend=backend,
            state_spec="state/trunks.json",
            api_url="http://127.0.0.1:9",
            options=options,
            max_deactivate_share=0.3,
            force=False,
            **planned,
        )

    recorded = document(planned_on=planned_on)["state"]
    assert (recorded["lineage"], recorded["serial"]) == (planned_on.lineage, 7)
    # None: there was no state; by default, what the backend holds now (none here).
    assert document(planned_on=None)["state"]["lineage"] is None
    assert document()["state"]["lineage"] is None
