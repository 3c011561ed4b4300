"""Carry out the creates of a plan, in parallel, recording every id durably.

For each create: record a write-ahead intent, send, then replace the intent
with the id (or drop it when the server surely created nothing). When the
outcome is unknown (5xx, timeout, dropped connection), the platform's list
decides: the trunk is adopted if it is there, created again only if it is
surely not. An intent that cannot be resolved stays in the state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial

from trunksync import fingerprints
from trunksync.client import OutcomeUnknown, PlatformClient
from trunksync.config import DesiredTrunk
from trunksync.errors import ApiError
from trunksync.journal import Journal, Mutation
from trunksync.plan import CREATING, PRUNE, REPLACE, RETIRE, Change
from trunksync.reconcile import (
    ABSENT,
    ADOPT,
    AMBIGUOUS,
    RemoteTrunk,
    Resolution,
    ambiguity_message,
    foreign_message,
    resolve_intent,
    settle_time,
)
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result
from trunksync.state import Intent, RetiredTrunk, State, TrunkRecord, utc_now

MAX_ATTEMPTS = 3


Report = Callable[[Result], None]


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class Settler:
    """Resolves intents from the remote list, waiting out requests that may be in flight."""

    def __init__(
        self,
        client: PlatformClient,
        journal: Journal,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._client = client
        self._journal = journal
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock

    def resolve(self, name: str, intent: Intent, answered: bool = False) -> Resolution:
        """The platform's answer for one intent; `answered` means the server finished with it."""
        resolution = self._resolve(name, intent, self._client.list_trunks())
        if resolution.kind != ABSENT or answered:
            return resolution
        remaining = (settle_time(intent, self._timeout) - self._clock()).total_seconds()
        if remaining <= 0:
            return resolution
        # Our request may still be on its way or in progress: look again once it cannot be.
        self._sleep(remaining)
        return self._resolve(name, intent, self._client.list_trunks())

    def resolve_all(self, remote: list[RemoteTrunk]) -> list[Resolution]:
        """Resolve every intent in the state (start of a run); record adoptions and absences."""
        intents = self._journal.read(lambda state: dict(state.intents))
        known = self._journal.read(State.known_ids)
        resolutions = [resolve_intent(n, i, remote, known) for n, i in intents.items()]
        latest = max(
            (settle_time(intents[r.name], self._timeout) for r in resolutions if r.kind == ABSENT),
            default=None,
        )
        if latest is not None and latest > self._clock():
            self._sleep((latest - self._clock()).total_seconds())
            fresh = self._client.list_trunks()
            resolutions = [resolve_intent(n, i, fresh, known) for n, i in intents.items()]
        mutations = [mutation_for(r, intents[r.name]) for r in resolutions]
        if any(mutations):
            self._journal.commit(lambda state: [m(state) for m in mutations if m])
        return resolutions

    def _resolve(self, name: str, intent: Intent, remote: list[RemoteTrunk]) -> Resolution:
        known = self._journal.read(State.known_ids)
        return resolve_intent(name, intent, remote, known)


def mutation_for(resolution: Resolution, intent: Intent) -> Mutation | None:
    """What a resolution changes in the state: adopt the trunk, or forget the intent."""
    name = resolution.name
    if resolution.kind == ADOPT:
        found = resolution.candidates[0]
        record = intent.record(found.trunk_id, found.created_at or utc_now())
        return lambda state: _set_record(state, name, record, intent)
    if resolution.kind == ABSENT:
        return lambda state: forget_intent(state, name)
    return None


class _Handoff(threading.local):
    """Per worker: the next change, and its intent if it was written already."""

    change: Change | None = None
    intent: Intent | None = None


class Applier:
    """Runs creates on a thread pool; `stop()` lets the in-flight ones finish."""

    def __init__(
        self, client: PlatformClient, journal: Journal, parallelism: int, settler: Settler
    ) -> None:
        self._client = client
        self._journal = journal
        self._parallelism = max(1, parallelism)
        self._settler = settler
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._handoff = _Handoff()
        self._failure: BaseException | None = None
        self.interrupted = False

    def stop(self) -> None:
        self._stopping.set()

    def run(self, changes: list[Change], report: Report) -> list[Result]:
        """Carry out `changes` with `parallelism` workers; `report` each result once durable."""
        self._pending = deque(changes)
        self._results: list[Result] = []
        self._report = report
        firsts = [self._take() for _ in range(min(self._parallelism, len(changes)))]
        intents = {c.name: _intent_for(c) for c in firsts if c is not None and c.action in CREATING}
        if intents:  # the first requests' intents, all in one write
            self._journal.commit(lambda state: state.intents.update(intents))
        workers = [
            threading.Thread(
                target=self._work,
                args=(first, intents.get(first.name)),
                name=f"apply-{n}",
                daemon=True,  # a second Ctrl-C must not wait for them
            )
            for n, first in enumerate(firsts)
            if first is not None
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            self._join(worker)
        if self._failure is not None:
            raise self._failure
        return self._results

    def _join(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            try:
                worker.join()
            except KeyboardInterrupt:
                # First Ctrl-C: start nothing new, let in-flight creates land
                # and be recorded. A second one is not caught here.
                if self._stopping.is_set():
                    raise
                self.interrupted = True
                self.stop()

    def _work(self, first: Change, first_intent: Intent | None) -> None:
        change: Change | None = first
        intent = first_intent
        try:
            while change is not None:
                self._handoff.change = self._handoff.intent = None
                result = self.carry_out(change, intent)
                with self._lock:
                    self._results.append(result)
                    self._report(result)
                change, intent = self._handoff.change, self._handoff.intent
        except BaseException as error:  # a failed state write: stop everything, say why
            self._failure = self._failure or error
            self.stop()

    def _take(self) -> Change | None:
        with self._lock:
            if self._stopping.is_set() or not self._pending:
                return None
            return self._pending.popleft()

    def _close(self, mutation: Mutation | None) -> None:
        """The last write of a change; it also carries the next change's intent.

        So a worker waits for one write per create, not two: the next request's
        intent becomes durable together with the previous answer.
        """
        following = self._take()
        intent = None
        if following is not None and following.action in CREATING:
            intent = _intent_for(following)
        self._handoff.change, self._handoff.intent = following, intent
        if mutation is None and intent is None:
            return

        def both(state: State) -> None:
            if mutation is not None:
                mutation(state)
            if following is not None and intent is not None:
                state.intents[following.name] = intent

        self._journal.commit(both)

    def carry_out(self, change: Change, intent: Intent | None = None) -> Result:
        """One change of the plan: a create (maybe replacing a trunk) or a deactivation.

        `intent` is this change's intent when it was written already.
        """
        if change.action in (PRUNE, RETIRE):
            return self.deactivate_one(change)
        assert change.desired is not None  # creating changes always carry their entry
        replaces = _replaced_id(change)
        final = self._close if replaces is None else _plain_commit(self._journal)
        result = self.create_one(change.desired, replaces, intent, final)
        if replaces is None:
            return result
        if result.status != CREATED:
            self._close(None)
            return result
        return self._retire(change.name, replaces, result)

    def deactivate_one(self, change: Change) -> Result:
        trunk_id = change.trunk_id or ""
        try:
            self._client.deactivate(trunk_id)
        except ApiError as error:
            self._close(None)
            return Result(change.name, FAILED, trunk_id, f"not deactivated: {error}")
        if change.action == PRUNE:
            self._close(lambda state: _forget_trunk(state, change.name, trunk_id))
        else:
            self._close(lambda state: state.retired.pop(trunk_id, None))
        return Result(change.name, DEACTIVATED, trunk_id)

    def _retire(self, name: str, old_id: str, created: Result) -> Result:
        try:
            self._client.deactivate(old_id)
        except ApiError as error:
            self._close(None)
            message = f"replaced {old_id}, not deactivated yet ({error}); apply retries it"
            return created._replace(message=message)
        self._close(lambda state: state.retired.pop(old_id, None))
        return created._replace(message=f"replaced {old_id}, now deactivated")

    def create_one(
        self,
        trunk: DesiredTrunk,
        replaces: str | None = None,
        intent: Intent | None = None,
        final: Callable[[Mutation | None], None] | None = None,
    ) -> Result:
        """Create one trunk; resolve an unknown outcome before ever sending again.

        `final` makes the last write (by default, a plain commit).
        """
        last = final or _plain_commit(self._journal)
        for _ in range(MAX_ATTEMPTS):
            intent = intent or self._begin(trunk, replaces)
            try:
                trunk_id = self._client.create_trunk(trunk.request_body(), redact=_secrets(trunk))
            except OutcomeUnknown as error:
                settled = self._settle(trunk.name, intent, error, last)
                if settled is not None:
                    return settled
                intent = None  # surely not created: a new intent, then send again
                continue
            except ApiError as error:
                last(partial(forget_intent, name=trunk.name))
                return Result(trunk.name, FAILED, message=str(error))
            record = intent.record(trunk_id, utc_now())
            last(partial(_set_record, name=trunk.name, record=record, intent=intent))
            return Result(trunk.name, CREATED, trunk_id)
        last(None)
        return Result(trunk.name, FAILED, message=f"not created after {MAX_ATTEMPTS} attempts")

    def _begin(self, trunk: DesiredTrunk, replaces: str | None) -> Intent:
        intent = new_intent(trunk, replaces)
        self._journal.commit(lambda state: state.intents.__setitem__(trunk.name, intent))
        return intent

    def _settle(
        self,
        name: str,
        intent: Intent,
        error: OutcomeUnknown,
        last: Callable[[Mutation | None], None],
    ) -> Result | None:
        try:
            resolution = self._settler.resolve(name, intent, answered=error.answered)
        except ApiError as list_error:
            last(None)
            message = f"{error}; the platform could not be checked ({list_error}); run apply again"
            return Result(name, UNKNOWN, message=message)
        mutation = mutation_for(resolution, intent)
        if resolution.kind == ABSENT:
            assert mutation is not None
            self._journal.commit(mutation)
            return None
        last(mutation)
        if resolution.kind == ADOPT:
            trunk_id = resolution.candidates[0].trunk_id
            return Result(name, CREATED, trunk_id, f"adopted after: {error}")
        if resolution.kind == AMBIGUOUS:
            return Result(name, UNKNOWN, message=ambiguity_message(resolution))
        return Result(name, UNKNOWN, message=foreign_message(name, resolution.candidates))


def _plain_commit(journal: Journal) -> Callable[[Mutation | None], None]:
    def commit(mutation: Mutation | None) -> None:
        if mutation is not None:
            journal.commit(mutation)

    return commit


def _intent_for(change: Change) -> Intent:
    assert change.desired is not None  # creating changes always carry their entry
    return new_intent(change.desired, _replaced_id(change))


def _replaced_id(change: Change) -> str | None:
    return change.trunk_id if change.action == REPLACE else None


def new_intent(trunk: DesiredTrunk, replaces: str | None = None) -> Intent:
    return Intent(
        replaces=replaces,
        trunk_type=trunk.trunk_type,  # type: ignore[arg-type]
        config=trunk.config,
        secret_fingerprints=fingerprints.fingerprint_secrets(trunk.secrets),
        request_fingerprint=fingerprints.fingerprint_request(trunk.request_body()),
        started_at=utc_now(),
    )


def record_created(
    state: State, trunk: DesiredTrunk, trunk_id: str, created_at: str | None = None
) -> None:
    """Record `trunk_id` as the trunk for this entry and close its intent."""
    _set_record(state, trunk.name, new_intent(trunk).record(trunk_id, created_at or utc_now()))


def _set_record(state: State, name: str, record: TrunkRecord, intent: Intent | None = None) -> None:
    """Record the id and close the intent; a replaced trunk is retired in the same write."""
    state.trunks[name] = record
    state.intents.pop(name, None)
    if intent is not None and intent.replaces and intent.replaces != record.trunk_id:
        state.retired[intent.replaces] = RetiredTrunk(name=name, since=utc_now())


def _forget_trunk(state: State, name: str, trunk_id: str) -> None:
    if name in state.trunks and state.trunks[name].trunk_id == trunk_id:
        del state.trunks[name]


def forget_intent(state: State, name: str) -> None:
    state.intents.pop(name, None)


def _secrets(trunk: DesiredTrunk) -> list[str]:
    return [secret.get_secret_value() for secret in trunk.secrets.values()]
