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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from functools import partial
from typing import NamedTuple

from trunksync import fingerprints
from trunksync.client import OutcomeUnknown, PlatformClient
from trunksync.config import DesiredTrunk
from trunksync.errors import ApiError
from trunksync.journal import Journal
from trunksync.plan import PRUNE, REPLACE, RETIRE, Change
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
from trunksync.state import Intent, RetiredTrunk, State, TrunkRecord, utc_now

CREATED, FAILED, UNKNOWN, DEACTIVATED = "created", "failed", "unknown", "deactivated"
MAX_ATTEMPTS = 3


class Result(NamedTuple):
    name: str
    status: str
    trunk_id: str | None = None
    message: str | None = None


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
        resolutions = [self._resolve(name, intent, remote) for name, intent in intents.items()]
        latest = max(
            (settle_time(intents[r.name], self._timeout) for r in resolutions if r.kind == ABSENT),
            default=None,
        )
        if latest is not None and latest > self._clock():
            self._sleep((latest - self._clock()).total_seconds())
            fresh = self._client.list_trunks()
            resolutions = [self._resolve(name, intent, fresh) for name, intent in intents.items()]
        for resolution in resolutions:
            self.record(resolution, intents[resolution.name])
        return resolutions

    def record(self, resolution: Resolution, intent: Intent) -> None:
        name = resolution.name
        if resolution.kind == ADOPT:
            found = resolution.candidates[0]
            record = intent.record(found.trunk_id, found.created_at or utc_now())
            self._journal.commit(lambda state: _set_record(state, name, record, intent))
        elif resolution.kind == ABSENT:
            self._journal.commit(lambda state: forget_intent(state, name))

    def _resolve(self, name: str, intent: Intent, remote: list[RemoteTrunk]) -> Resolution:
        known = self._journal.read(State.known_ids)
        return resolve_intent(name, intent, remote, known)


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
        self.interrupted = False

    def stop(self) -> None:
        self._stopping.set()

    def run(self, creates: list[Change], report: Report) -> list[Result]:
        results: list[Result] = []
        pending = list(creates)
        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="create") as pool:
            running: set[Future[Result]] = set()
            while (pending and not self._stopping.is_set()) or running:
                while pending and len(running) < self._parallelism and not self._stopping.is_set():
                    running.add(pool.submit(self.carry_out, pending.pop(0)))
                try:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    # First Ctrl-C: start nothing new, let in-flight creates land
                    # and be recorded. A second one is not caught here.
                    if self._stopping.is_set():
                        raise
                    self.interrupted = True
                    self.stop()
                    continue
                for future in done:
                    results.append(future.result())
                    report(results[-1])
        return results

    def carry_out(self, change: Change) -> Result:
        """One change of the plan: a create (maybe replacing a trunk) or a deactivation."""
        if change.action in (PRUNE, RETIRE):
            return self.deactivate_one(change)
        assert change.desired is not None  # creating changes always carry their entry
        replaces = change.trunk_id if change.action == REPLACE else None
        result = self.create_one(change.desired, replaces)
        if replaces is None or result.status != CREATED:
            return result
        return self._retire(change.name, replaces, result)

    def deactivate_one(self, change: Change) -> Result:
        trunk_id = change.trunk_id or ""
        try:
            self._client.deactivate(trunk_id)
        except ApiError as error:
            return Result(change.name, FAILED, trunk_id, f"not deactivated: {error}")
        if change.action == PRUNE:
            self._journal.commit(lambda state: _forget_trunk(state, change.name, trunk_id))
        else:
            self._journal.commit(lambda state: state.retired.pop(trunk_id, None))
        return Result(change.name, DEACTIVATED, trunk_id)

    def _retire(self, name: str, old_id: str, created: Result) -> Result:
        try:
            self._client.deactivate(old_id)
        except ApiError as error:
            message = f"replaced {old_id}, not deactivated yet ({error}); apply retries it"
            return created._replace(message=message)
        self._journal.commit(lambda state: state.retired.pop(old_id, None))
        return created._replace(message=f"replaced {old_id}, now deactivated")

    def create_one(self, trunk: DesiredTrunk, replaces: str | None = None) -> Result:
        """Create one trunk; resolve an unknown outcome before ever sending again."""
        for _ in range(MAX_ATTEMPTS):
            intent = self._begin(trunk, replaces)
            try:
                trunk_id = self._client.create_trunk(trunk.request_body(), redact=_secrets(trunk))
            except OutcomeUnknown as error:
                settled = self._settle(trunk.name, intent, error)
                if settled is not None:
                    return settled
                continue  # surely not created: sending again is safe
            except ApiError as error:
                self._journal.commit(lambda state: forget_intent(state, trunk.name))
                return Result(trunk.name, FAILED, message=str(error))
            record = intent.record(trunk_id, utc_now())
            self._journal.commit(
                partial(_set_record, name=trunk.name, record=record, intent=intent)
            )
            return Result(trunk.name, CREATED, trunk_id)
        return Result(trunk.name, FAILED, message=f"not created after {MAX_ATTEMPTS} attempts")

    def _begin(self, trunk: DesiredTrunk, replaces: str | None) -> Intent:
        intent = new_intent(trunk, replaces)
        self._journal.commit(lambda state: state.intents.__setitem__(trunk.name, intent))
        return intent

    def _settle(self, name: str, intent: Intent, error: OutcomeUnknown) -> Result | None:
        try:
            resolution = self._settler.resolve(name, intent, answered=error.answered)
        except ApiError as list_error:
            message = f"{error}; the platform could not be checked ({list_error}); run apply again"
            return Result(name, UNKNOWN, message=message)
        self._settler.record(resolution, intent)
        if resolution.kind == ADOPT:
            trunk_id = resolution.candidates[0].trunk_id
            return Result(name, CREATED, trunk_id, f"adopted after: {error}")
        if resolution.kind == ABSENT:
            return None
        if resolution.kind == AMBIGUOUS:
            return Result(name, UNKNOWN, message=ambiguity_message(resolution))
        return Result(name, UNKNOWN, message=foreign_message(name, resolution.candidates))


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
