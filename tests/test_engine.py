"""The apply engine on the backend seam: one committer, group commit, write-ahead
intents, the cancel token, bounded waits, clock skew, SIGTERM.

Fakes stand in for the platform and the state where a test needs to see the
order of events; the SIGTERM test runs real processes over loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from helpers import API_KEY, exotel_trunks, write
from processes import TRUNKSYNC, emulator_process
from trunksync.apply import (
    RUNNER_CLOCK_SKEW,
    SEND_SLACK,
    Applier,
    Committer,
    Listing,
    Settler,
)
from trunksync.changes import ForgetIntent, RecordIntent, StateChange, apply_changes
from trunksync.client import OutcomeUnknown
from trunksync.config import DesiredTrunk
from trunksync.errors import StateError
from trunksync.plan import CREATE, Change
from trunksync.reconcile import ABSENT, ADOPT, RemoteTrunk
from trunksync.results import CREATED, UNKNOWN, Result
from trunksync.state import Intent, State, stamp, utc_now


class FakeLocked:
    """A LockedState in memory that remembers every commit (each one durable)."""

    def __init__(self) -> None:
        self._state = State.new()
        self.commits: list[list[StateChange]] = []

    @property
    def state(self) -> State:
        return self._state

    @property
    def existed(self) -> bool:
        return False

    def commit(self, changes: Sequence[StateChange]) -> None:
        self.commits.append(list(changes))
        apply_changes(self._state, changes)


class FakeClient:
    """Creates trunks in memory; checks the write-ahead rule on every create."""

    def __init__(self, locked: FakeLocked) -> None:
        self.locked = locked
        self.trunks: list[RemoteTrunk] = []
        self.sent: list[str] = []
        self.lock = threading.Lock()
        self.unknown_for: set[str] = set()  # names whose create answers "outcome unknown"
        self.on_create: Any = None
        # Attempts the client itself retries before a create goes through (a 429),
        # each preceded by `before_send`, as PlatformClient does.
        self.rate_limited = 0
        self.on_attempt: Any = None
        self.answer_ids: dict[str, str] = {}  # name -> the id its create answers with
        self.lost_answers: set[str] = set()  # names whose create is made, then times out
        self.created_at = "2024-01-01T00:00:00"

    def create_trunk(self, body: dict[str, Any], redact: Any = (), before_send: Any = None) -> str:
        answered = self.answer_ids.get(body["trunk_name"])
        if answered is not None:  # creates a trunk, but answers with another id
            self._create(body, before_send)
            return answered
        return self._create(body, before_send)

    def _create(self, body: dict[str, Any], before_send: Any) -> str:
        name = body["trunk_name"]
        for _ in range(self.rate_limited + 1):
            if before_send is not None:
                before_send()
            if self.on_attempt is not None:
                self.on_attempt(name)
        # The intent must already be durable (committed) when the request goes out.
        assert name in self.locked.state.intents, f"create for {name} sent before its intent"
        with self.lock:
            self.sent.append(name)
        if self.on_create is not None:
            self.on_create(name)
        if name in self.unknown_for:
            raise OutcomeUnknown("no answer from the API (timeout)")
        trunk_id = f"ST_{len(self.sent):04d}"
        with self.lock:
            self.trunks.append(RemoteTrunk(trunk_id, name, "exotel", self.created_at))
        if name in self.lost_answers:  # created, but the answer never came back
            raise OutcomeUnknown("no answer from the API (timeout)")
        return trunk_id

    def list_trunks(self) -> list[RemoteTrunk]:
        with self.lock:
            return list(self.trunks)

    def deactivate(self, trunk_id: str) -> None:
        return None


def creates(count: int) -> list[Change]:
    trunks = [
        DesiredTrunk(f"T{index:02d}", "exotel", {"exotel_number": f"+9180{index:08d}"}, {}, 1)
        for index in range(count)
    ]
    return [Change(t.name, CREATE, "exotel", None, (), t) for t in trunks]


def applier(
    client: FakeClient, locked: FakeLocked, parallelism: int, **settler: Any
) -> tuple[Applier, threading.Event]:
    cancel = threading.Event()
    settle = Settler(client, 1.0, cancel=cancel, **settler)  # type: ignore[arg-type]
    engine = Applier(
        client,  # type: ignore[arg-type]
        locked,
        parallelism=parallelism,
        settler=settle,
        cancel=cancel,
    )
    return engine, cancel


def test_one_durable_write_per_create_and_intents_before_sends() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)
    engine, _ = applier(client, locked, parallelism=1)
    reported: list[Result] = []
    results = engine.run(creates(5), reported.append)
    assert [r.status for r in results] == [CREATED] * 5
    assert reported == results
    # intents 0 and 1 | id 0 + intent 2 | ... | id 4: each answer carries the intent of the
    # change after next, and answers that arrive together share a commit: at most one
    # durable write per create (FakeClient checks every intent is durable before its send).
    assert 2 <= len(locked.commits) <= 6
    assert [(type(c).__name__, c.name) for c in locked.commits[0]] == [
        ("RecordIntent", "T00"),
        ("RecordIntent", "T01"),
    ]
    kinds = [type(c).__name__ for commit in locked.commits for c in commit]
    assert kinds.count("RecordId") == 5 and kinds.count("RecordIntent") == 5
    assert locked.state.intents == {}
    assert {n: r.trunk_id for n, r in locked.state.trunks.items()} == {
        t.trunk_name: t.trunk_id for t in client.trunks
    }


def test_parallel_workers_keep_the_write_ahead_rule() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)  # asserts the intent is durable on every send
    engine, _ = applier(client, locked, parallelism=8)
    results = engine.run(creates(40), lambda result: None)
    assert sorted(r.status for r in results) == [CREATED] * 40
    assert len(locked.state.trunks) == 40 and locked.state.intents == {}
    assert len(client.sent) == 40


def test_a_result_is_reported_only_once_its_change_is_durable() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)
    engine, _ = applier(client, locked, parallelism=4)
    seen: list[bool] = []

    def report(result: Result) -> None:
        seen.append(locked.state.trunks[result.name].trunk_id == result.trunk_id)

    engine.run(creates(12), report)
    assert seen == [True] * 12


class GatedLocked(FakeLocked):
    """The first commit waits at a gate, so that later submissions pile up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def commit(self, changes: Sequence[StateChange]) -> None:
        if not self.commits:
            self.entered.set()
            assert self.gate.wait(30)
        super().commit(changes)


def test_the_committer_groups_everything_that_waits_into_one_commit() -> None:
    locked = GatedLocked()
    reported: list[str] = []
    intent = Intent(trunk_type="exotel", request_fingerprint="x", started_at="2024-01-01T00:00Z")
    with Committer(locked, lambda result: reported.append(result.name)) as committer:
        first = threading.Thread(target=committer.submit, args=([RecordIntent("a", intent)],))
        first.start()
        assert locked.entered.wait(30)
        others = [
            threading.Thread(
                target=committer.submit,
                args=([RecordIntent(name, intent)], Result(name, CREATED, "ST_1")),
            )
            for name in "bcdef"
        ]
        for thread in others:
            thread.start()
        deadline = time.monotonic() + 30
        while committer._queue.qsize() < 5:  # all five are waiting
            assert time.monotonic() < deadline
            time.sleep(0.001)
        locked.gate.set()
        for thread in [first, *others]:
            thread.join()
    assert len(locked.commits) == 2
    assert sorted(c.name for c in locked.commits[1]) == list("bcdef")  # type: ignore[union-attr]
    assert sorted(reported) == list("bcdef")
    assert committer.batches == 2


class FailingLocked(FakeLocked):
    def commit(self, changes: Sequence[StateChange]) -> None:
        if len(self.commits) >= 2:
            raise StateError("cannot write the state: disk full")
        super().commit(changes)


def test_a_failed_commit_stops_every_worker_and_is_raised() -> None:
    locked = FailingLocked()
    client = FakeClient(locked)
    engine, cancel = applier(client, locked, parallelism=1)
    with pytest.raises(StateError, match="disk full"):
        engine.run(creates(5), lambda result: None)
    assert cancel.is_set()
    # Only creates whose intent a successful write made durable were sent: none after
    # the failure, and every one of them is accounted for by the durable state.
    durable_intents = [
        change.name
        for commit in locked.commits
        for change in commit
        if isinstance(change, RecordIntent)
    ]
    assert client.sent == durable_intents[: len(client.sent)]
    assert 2 <= len(client.sent) < 5


def test_cancel_starts_nothing_new_and_records_what_was_in_flight() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)
    engine, cancel = applier(client, locked, parallelism=1)
    client.on_create = lambda name: cancel.set()  # "Ctrl-C" while the first create is in flight
    results = engine.run(creates(5), lambda result: None)
    assert [r.status for r in results] == [CREATED]
    assert client.sent == ["T00"]
    assert set(locked.state.trunks) == {"T00"}
    assert locked.state.intents == {}  # the next intent, written ahead, was withdrawn
    assert engine.interrupted


def test_a_wait_for_an_unknown_outcome_wakes_on_cancel_and_keeps_the_intent() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)
    client.unknown_for = {"T00"}
    waited: list[float] = []

    def wait(seconds: float) -> bool:
        waited.append(seconds)
        return True  # the cancel token was set while waiting

    engine, _ = applier(client, locked, parallelism=1, wait=wait)
    results = engine.run(creates(1), lambda result: None)
    assert [r.status for r in results] == [UNKNOWN]
    assert "interrupted before the platform could be checked" in str(results[0].message)
    # bounded by the request timeout plus the send slack
    assert len(waited) == 1 and 0 < waited[0] <= 1.0 + SEND_SLACK
    assert set(locked.state.intents) == {"T00"}  # the next run resolves it
    assert client.sent == ["T00"]


def test_absent_after_the_wait_sends_again_with_a_new_intent() -> None:
    locked = FakeLocked()
    client = FakeClient(locked)
    client.unknown_for = {"T00"}
    engine, _ = applier(client, locked, parallelism=1, wait=lambda seconds: False)

    def answer_next_time(name: str) -> None:
        if len(client.sent) == 2:
            client.unknown_for.clear()

    client.on_create = answer_next_time
    results = engine.run(creates(1), lambda result: None)
    assert [r.status for r in results] == [CREATED]
    assert client.sent == ["T00", "T00"]
    intents = [c for batch in locked.commits for c in batch if isinstance(c, RecordIntent)]
    assert len(intents) == 2  # a fresh intent was durable before the second send


class SteppingClock:
    """A clock that moves only when told (a slow create, without sleeping)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_a_create_is_sent_within_the_slack_of_its_durable_intent() -> None:
    # Intents are recorded one change ahead; after a slow create, the next one's
    # intent is old. The settler's bound (started_at + slack + timeout) holds only
    # if the durable started_at is within the slack of the real send: checked at
    # every send, with every create taking 10 s on the clock (one worker: the clock
    # is shared, and another worker's step is not time passing for this one).
    locked = FakeLocked()
    client = FakeClient(locked)
    clock = SteppingClock()
    ages: list[float] = []

    def slow_create(name: str) -> None:
        started = datetime.fromisoformat(locked.state.intents[name].started_at)
        ages.append((clock.now - started).total_seconds())
        clock.now += timedelta(seconds=10)

    client.on_create = slow_create
    settle = Settler(client, 1.0, clock=clock)  # type: ignore[arg-type]
    engine = Applier(
        client,  # type: ignore[arg-type]
        locked,
        parallelism=1,
        settler=settle,
        clock=clock,
    )
    results = engine.run(creates(6), lambda result: None)
    assert [r.status for r in results] == [CREATED] * 6
    assert len(ages) == 6 and max(ages) <= SEND_SLACK
    # Each worker's first two intents were recorded together; later ones were
    # recorded again just before their send, so the slack cost a write, not safety.
    refreshed = [c for batch in locked.commits for c in batch if isinstance(c, RecordIntent)]
    assert len(refreshed) > 6
    assert locked.state.intents == {}


def test_a_create_the_client_retries_is_sent_within_the_slack_of_its_intent() -> None:
    # A 429 is retried inside the client, Retry-After seconds later: the intent's time
    # must be refreshed before each attempt, not only before the first one.
    locked = FakeLocked()
    client = FakeClient(locked)
    client.rate_limited = 2
    clock = SteppingClock()
    ages: list[float] = []

    def attempt(name: str) -> None:
        started = datetime.fromisoformat(locked.state.intents[name].started_at)
        ages.append((clock.now - started).total_seconds())
        clock.now += timedelta(seconds=10)  # the wait before the client's next attempt

    client.on_attempt = attempt
    settle = Settler(client, 1.0, clock=clock)  # type: ignore[arg-type]
    engine = Applier(client, locked, parallelism=1, settler=settle, clock=clock)  # type: ignore[arg-type]
    results = engine.run(creates(2), lambda result: None)
    assert [r.status for r in results] == [CREATED] * 2
    assert len(ages) == 6 and max(ages) <= SEND_SLACK
    assert locked.state.intents == {}


def test_an_answer_naming_another_trunks_id_is_not_believed() -> None:
    # The second create makes its trunk but answers with the first one's id:
    # recorded as is, one id would stand for two names and the real trunk would
    # be known to nobody. The list decides: the real trunk is adopted.
    locked = FakeLocked()
    client = FakeClient(locked)
    client.answer_ids = {"T01": "ST_0001"}
    client.created_at = utc_now()  # after the intents: the found trunk is adoptable
    engine, _ = applier(client, locked, parallelism=1)
    results = engine.run(creates(2), lambda result: None)
    ids = {name: record.trunk_id for name, record in locked.state.trunks.items()}
    assert ids == {"T00": "ST_0001", "T01": "ST_0002"}
    assert {t.trunk_id for t in client.trunks} == set(ids.values())
    assert "an id already recorded for another trunk" in (results[1].message or "")


def test_an_unreadable_creation_time_on_the_platform_still_records_the_trunk() -> None:
    # An adopted trunk's time comes from the platform's list: a time the state
    # could not load again is replaced by now, not a crash on every later run.
    locked = FakeLocked()
    client = FakeClient(locked)
    client.created_at = "Thu, 15 Jan 2026 10:00"
    client.lost_answers = {"T00"}
    engine, _ = applier(client, locked, parallelism=1, clock=lambda: NOW, wait=lambda s: False)
    results = engine.run(creates(1), lambda result: None)
    assert [r.status for r in results] == [CREATED]
    recorded = locked.state.trunks["T00"]
    assert recorded.trunk_id == "ST_0001"
    assert datetime.fromisoformat(recorded.created_at.replace("Z", "+00:00")).year >= 2026


def _intent_at(moment: datetime) -> Intent:
    return Intent(
        trunk_type="exotel",
        request_fingerprint="x",
        started_at=stamp(moment),
    )


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_an_intent_in_the_future_is_a_bounded_wait_with_a_message() -> None:
    notices: list[str] = []
    settler = Settler(
        FakeClient(FakeLocked()),  # type: ignore[arg-type]
        30.0,
        clock=lambda: NOW,
        notice=notices.append,
    )
    bound = 30.0 + SEND_SLACK  # sent at most SEND_SLACK after started_at, then 30 s at most
    assert settler.settle_wait("a", _intent_at(NOW + timedelta(hours=3))) == bound
    assert len(notices) == 1
    assert "10800s in the future of this machine's clock" in notices[0]
    # An ordinary recent intent waits out the rest of its request's time, silently.
    assert settler.settle_wait("b", _intent_at(NOW - timedelta(seconds=10))) == bound - 10
    assert settler.settle_wait("c", _intent_at(NOW - timedelta(minutes=5))) == 0.0
    assert len(notices) == 1


def test_a_skewed_intent_at_the_start_of_a_run_waits_boundedly() -> None:
    locked = FakeLocked()
    locked.commit([RecordIntent("T00", _intent_at(NOW + timedelta(days=2)))])
    client = FakeClient(locked)
    waited: list[float] = []
    notices: list[str] = []
    settler = Settler(
        client,  # type: ignore[arg-type]
        5.0,
        clock=lambda: NOW,
        wait=lambda seconds: bool(waited.append(seconds)),
        notice=notices.append,
    )
    resolutions, changes = settler.resolve_all(locked.state, Listing(NOW, []))
    assert waited == [5.0 + SEND_SLACK]
    assert [r.kind for r in resolutions] == ["absent"]
    assert changes == [ForgetIntent("T00")]
    assert "in the future" in notices[0]


def test_a_list_asked_for_before_an_intent_settled_is_asked_for_again() -> None:
    # The earlier run's create could still land until started_at + SEND_SLACK +
    # timeout. A list asked for just before that moment but read after it (a big
    # list, or one asked for while the state loads) proves nothing: it is asked
    # for again, and this time it shows the trunk, which is adopted, not recreated.
    locked = FakeLocked()
    bound = 5.0 + SEND_SLACK
    # Settles half a second after NOW, allowing for the earlier runner's clock.
    started = NOW - timedelta(seconds=bound + RUNNER_CLOCK_SKEW - 0.5)
    locked.commit([RecordIntent("T00", _intent_at(started))])
    client = FakeClient(locked)
    client.trunks.append(RemoteTrunk("ST_late", "T00", "exotel", stamp(started)))
    clock = SteppingClock()
    clock.now = NOW + timedelta(seconds=1)  # the answer was read after the deadline
    waited: list[float] = []
    settler = Settler(
        client,  # type: ignore[arg-type]
        5.0,
        clock=clock,
        wait=lambda seconds: bool(waited.append(seconds)),
    )
    resolutions, changes = settler.resolve_all(locked.state, Listing(NOW, []))
    assert waited == []  # nothing left to wait for: the list is only asked for again
    assert [(r.name, r.kind) for r in resolutions] == [("T00", ADOPT)]
    assert [type(change).__name__ for change in changes] == ["RecordId"]
    # A list asked for after the deadline (allowing for the earlier runner's clock
    # being behind) is trusted as it is.
    late = NOW + timedelta(seconds=RUNNER_CLOCK_SKEW + 1)
    resolutions, _ = settler.resolve_all(locked.state, Listing(late, []))
    assert [(r.name, r.kind) for r in resolutions] == [("T00", ABSENT)]
    assert waited == []


def test_an_intent_from_a_runner_whose_clock_was_behind_is_waited_for() -> None:
    # The killed runner's clock was 10 minutes behind: by its started_at, the
    # request ended long ago, but it was sent a moment ago and lands later. The
    # next run waits out the request's time (not more) and looks again.
    locked = FakeLocked()
    locked.commit([RecordIntent("T00", _intent_at(NOW - timedelta(minutes=10)))])
    client = FakeClient(locked)
    waited: list[float] = []

    def wait(seconds: float) -> bool:
        waited.append(seconds)
        client.trunks.append(RemoteTrunk("ST_late", "T00", "exotel", stamp(NOW)))
        return False

    notices: list[str] = []
    settler = Settler(
        client,  # type: ignore[arg-type]
        5.0,
        clock=lambda: NOW,
        wait=wait,
        notice=notices.append,
    )
    resolutions, changes = settler.resolve_all(locked.state, Listing(NOW, []))
    assert waited == [5.0 + SEND_SLACK]
    assert notices == [
        "1 create(s) an earlier run left may still be in progress: "
        "looking at the platform's list again in 7s"
    ]
    assert [(r.name, r.kind) for r in resolutions] == [("T00", ADOPT)]
    assert [type(change).__name__ for change in changes] == ["RecordId"]
    # An intent older than that allowance too is settled: no wait at all.
    old = FakeLocked()
    old.commit([RecordIntent("T01", _intent_at(NOW - timedelta(hours=1)))])
    resolutions, _ = settler.resolve_all(old.state, Listing(NOW, []))
    assert [(r.name, r.kind) for r in resolutions] == [("T01", ABSENT)]
    assert waited == [5.0 + SEND_SLACK]


def test_an_unreadable_intent_time_is_a_state_error() -> None:
    settler = Settler(FakeClient(FakeLocked()), 5.0)  # type: ignore[arg-type]
    # The state refuses such a time when it is loaded; the settler does not rely on that.
    intent = Intent.model_construct(
        trunk_type="exotel", request_fingerprint="x", started_at="yesterday\x1b[2J"
    )
    with pytest.raises(StateError, match="unreadable started_at") as caught:
        settler.settle_wait("a", intent)
    assert "\x1b" not in str(caught.value)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.e2e
def test_sigterm_records_what_is_in_flight_and_exits_143(tmp_path: Path) -> None:
    write(tmp_path / "trunks.yaml", exotel_trunks(12))
    with emulator_process("--latency-ms", "200") as emulator:
        env = {**os.environ, "TRUNKSYNC_API_URL": emulator.url, "TRUNKSYNC_API_KEY": API_KEY}
        process = subprocess.Popen(
            [*TRUNKSYNC, "apply", "--auto-approve", "--timeout", "5", "--parallelism", "2"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_signals,
        )
        deadline = time.monotonic() + 60
        while emulator.admin("GET", "stats")["create_calls"] < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert err.strip().splitlines() == [
            "Error: interrupted: in-flight creates were recorded; run apply again to continue "
            "(SIGTERM)"
        ]
        active = {t["trunk_name"]: t["trunk_id"] for t in emulator.active_trunks()}
        state = json.loads((tmp_path / "state/trunks.json").read_text())
        recorded = {n: r["trunk_id"] for n, r in state["trunks"].items()}
        # SIGTERM abandons the creates in flight: each one is recorded, as an id or
        # as an intent, and no trunk exists that the state does not account for.
        assert set(active) <= set(recorded) | set(state["intents"])
        assert all(active[name] == trunk_id for name, trunk_id in recorded.items())
        assert len(active) < 12
        rerun = subprocess.run(
            [*TRUNKSYNC, "apply", "--auto-approve", "--timeout", "5"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        active = {t["trunk_name"]: t["trunk_id"] for t in emulator.active_trunks()}
        state = json.loads((tmp_path / "state/trunks.json").read_text())
        assert len(emulator.active_trunks()) == len(active) == 12  # no duplicate names
        assert {n: r["trunk_id"] for n, r in state["trunks"].items()} == active
        assert state["intents"] == {}
