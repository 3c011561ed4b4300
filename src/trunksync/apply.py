"""Carry out the changes of a plan, in parallel, making every answer durable.

Workers send requests and return outcomes (a result and the typed state
changes it implies) to ONE committer, which makes the changes of every
outcome that arrived together durable in one `LockedState.commit` (group
commit), and only then reports their results. The rules that keep a run safe:

- write-ahead: a create is sent only once its RecordIntent is durable. Each
  answer travels with the intent of the worker's change after next, so a create
  costs at most one durable write and never waits for one it does not need;
- an unknown outcome (5xx, timeout, dropped connection, garbage) is resolved
  from the platform's list: adopt the trunk if it is there, send again only if
  it is surely absent, else stop with the exact `trunksync import` command;
- an id is reported only once it is durable;
- a cancel token (threading.Event) stops the run: nothing new starts, what is
  in flight is answered and recorded, and every wait wakes on it.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from trunksync import fingerprints
from trunksync.changes import (
    ForgetIntent,
    ForgetTrunk,
    RecordId,
    RecordIntent,
    StateChange,
    Unretire,
    apply_change,
)
from trunksync.config import DesiredTrunk
from trunksync.errors import ApiError, StateError
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
)
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result
from trunksync.sanitize import printable
from trunksync.state import Intent, State, parse_time, stamp, utc_now

if TYPE_CHECKING:
    from trunksync.backends.base import LockedState
    from trunksync.client import PlatformClient

MAX_ATTEMPTS = 3
# An intent is made durable one change ahead of its create, so it is older than
# its send by the duration of the create before it. The engine sends within this
# many seconds of an intent's started_at (an older one is recorded afresh first),
# and the settler adds it to every wait: a create can be in flight until
# started_at + SEND_SLACK + timeout, never later.
SEND_SLACK = 2.0
# An intent an earlier run left carries that runner's clock, which may be behind this
# one's: its request may still be in flight this much later than its recorded time
# says. Allowing for it costs only a wait (at most --timeout + SEND_SLACK, once, after
# a crash); not allowing for it can cost a duplicate trunk.
RUNNER_CLOCK_SKEW = 15 * 60.0
# A wait at least this long (seconds) is announced: nothing else shows for it.
NOTICE_WAIT = 1.0

Report = Callable[[Result], None]
Notice = Callable[[str], None]
Clock = Callable[[], datetime]
# Waits `seconds` unless the run is cancelled first; True when it was cancelled.
Wait = Callable[[float], bool]
T = TypeVar("T")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _ignore(_: str) -> None:
    return None


class Listing(NamedTuple):
    """The platform's list, and the time on the settler's clock just before it was
    asked for: it shows every create that had finished by `asked_at`, and proves
    nothing about one still in flight then (however late the answer was read)."""

    asked_at: datetime
    trunks: list[RemoteTrunk]


class Outcome(NamedTuple):
    """What one change of the plan came to: a result to report (None: not started)
    and the state changes that must be durable before it is reported."""

    result: Result | None
    changes: tuple[StateChange, ...] = ()


# --- waiting out requests that may still be in flight --------------------------------


class Settler:
    """Decides unknown outcomes from the platform's list, waiting (bounded, cancellable)
    until a request sent for an intent can no longer be in progress."""

    def __init__(
        self,
        client: PlatformClient,
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        clock: Clock = now_utc,
        wait: Wait | None = None,
        notice: Notice = _ignore,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._cancel = cancel or threading.Event()
        self._clock = clock
        self._wait = wait or self._cancel.wait
        self._notice = notice

    def settle_wait(self, name: str, intent: Intent, earlier_run: bool = False) -> float:
        """Seconds until a request sent for `intent` cannot be in progress any more.

        A create is sent within SEND_SLACK of its intent's started_at and lasts at
        most `timeout`; an `earlier_run`'s clock may also be RUNNER_CLOCK_SKEW
        behind. Bounded by timeout + SEND_SLACK: whatever the recorded time says,
        the request was sent before now, so it has settled that long from now. A
        start time in the future (a clock ahead, a hand edit) is named.
        """
        started = intent_started(name, intent)
        bound = self._timeout + SEND_SLACK
        ahead = (started - self._clock()).total_seconds()
        if ahead > 0:
            self._notice(
                f"the create for {printable(name)!r} was recorded as started at "
                f"{printable(intent.started_at)}, {ahead:.0f}s in the future of this machine's "
                f"clock (clock skew or an edited state); waiting {bound:g}s at most"
            )
            return bound
        return min(max(0.0, ahead + bound + self._skew(earlier_run)), bound)

    def settled_by(self, name: str, intent: Intent, moment: datetime) -> bool:
        """Whether a request an earlier run sent for `intent` had surely ended at `moment`."""
        started = intent_started(name, intent)
        elapsed = (moment - started).total_seconds()
        return elapsed >= self._timeout + SEND_SLACK + self._skew(earlier_run=True)

    @staticmethod
    def _skew(earlier_run: bool) -> float:
        return RUNNER_CLOCK_SKEW if earlier_run else 0.0

    def listing(self) -> Listing:
        """The platform's list, stamped with the time it was asked for."""
        asked_at = self._clock()
        return Listing(asked_at, self._client.list_trunks())

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; False when the run was cancelled meanwhile."""
        if seconds <= 0:
            return not self._cancel.is_set()
        return not self._wait(seconds)

    def resolve(
        self, name: str, intent: Intent, known: Callable[[], set[str]], answered: bool
    ) -> Resolution | None:
        """The platform's answer for one intent (None: cancelled while waiting).

        `answered` means the platform finished with the request (a 2xx it could
        not use): the list can be read at once."""
        resolution = resolve_intent(name, intent, self._client.list_trunks(), known())
        if resolution.kind != ABSENT or answered:
            return resolution
        seconds = self.settle_wait(name, intent)
        if seconds >= NOTICE_WAIT:
            self._notice(
                f"the create for {printable(name)!r} has an unknown outcome and the platform "
                f"does not show it yet: looking again in {seconds:.0f}s, once it cannot be "
                "in progress any more"
            )
        if not self.wait(seconds):
            return None
        return resolve_intent(name, intent, self._client.list_trunks(), known())

    def resolve_all(
        self, state: State, listing: Listing
    ) -> tuple[list[Resolution], list[StateChange]]:
        """Every intent of `state` (start of a run) and the changes that record them.

        An intent absent from `listing` counts as absent only if its request had
        surely ended when the list was asked for (not when it was read: the list
        may be read after the deadline yet show the platform from before it).
        The earlier run's clock may have been behind (RUNNER_CLOCK_SKEW). Otherwise
        it is looked up again once it cannot be in flight; if the run is
        cancelled meanwhile, absent intents are kept (the next run resolves them)."""
        intents = dict(state.intents)
        known = state.known_ids()
        resolutions = [resolve_intent(n, i, listing.trunks, known) for n, i in intents.items()]
        unsettled = [
            r.name
            for r in resolutions
            if r.kind == ABSENT and not self.settled_by(r.name, intents[r.name], listing.asked_at)
        ]
        if unsettled:
            longest = max(self.settle_wait(n, intents[n], earlier_run=True) for n in unsettled)
            if longest >= NOTICE_WAIT:
                self._notice(
                    f"{len(unsettled)} create(s) an earlier run left may still be in "
                    f"progress: looking at the platform's list again in {longest:.0f}s"
                )
            if not self.wait(longest):
                return resolutions, _changes_for(
                    [r for r in resolutions if r.kind != ABSENT], intents
                )
            fresh = self.listing().trunks
            resolutions = [resolve_intent(n, i, fresh, known) for n, i in intents.items()]
        return resolutions, _changes_for(resolutions, intents)


def intent_started(name: str, intent: Intent) -> datetime:
    """When the intent's create was sent; an unreadable time is a state error."""
    try:
        return parse_time(intent.started_at)
    except (ValueError, TypeError):
        raise StateError(
            f"the state's intent for {printable(name)!r} has an unreadable started_at "
            f"({printable(str(intent.started_at))[:40]!r}); fix or restore the state file"
        ) from None


def resolution_change(resolution: Resolution, intent: Intent) -> StateChange | None:
    """What a resolution records: the adopted trunk, or the end of an absent intent."""
    if resolution.kind == ADOPT:
        found = resolution.candidates[0]
        return _record_id(resolution.name, intent, found.trunk_id, found.created_at or utc_now())
    if resolution.kind == ABSENT:
        return ForgetIntent(resolution.name)
    return None


def _changes_for(resolutions: list[Resolution], intents: dict[str, Intent]) -> list[StateChange]:
    changes = [resolution_change(r, intents[r.name]) for r in resolutions]
    return [change for change in changes if change is not None]


# --- the committer -------------------------------------------------------------------


class _Submission(NamedTuple):
    changes: tuple[StateChange, ...]
    result: Result | None
    done: Future[None]


class Committer:
    """The one thread that writes: it commits every submission waiting in its queue as
    one batch, then reports their results, then lets their workers go on."""

    def __init__(self, locked: LockedState, report: Report) -> None:
        self._locked = locked
        self._report = report
        self._queue: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._state_lock = threading.Lock()  # commits vs. readers of the state
        self._thread = threading.Thread(target=self._run, name="apply-committer", daemon=True)
        self.results: list[Result] = []
        self.failure: BaseException | None = None
        self.batches = 0  # how many commits were made (group commit, observable)
        self.interrupted = False  # a stop signal arrived while it finished

    def __enter__(self) -> Committer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        # The committer's remaining work is bounded (one write): finish it even
        # through a stop signal, so nothing is written after the state is released.
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt:
                self.interrupted = True

    def submit(self, changes: Sequence[StateChange], result: Result | None = None) -> None:
        """Return once `changes` are durable and `result` reported; raise why not."""
        self.submit_later(changes, result).result()

    def submit_later(
        self, changes: Sequence[StateChange], result: Result | None = None
    ) -> Future[None]:
        """Queue `changes` (and `result`); the future is done once they are durable and
        the result reported, or fails with why not."""
        done: Future[None] = Future()
        self._queue.put(_Submission(tuple(changes), result, done))
        return done

    def read(self, query: Callable[[State], T]) -> T:
        """`query` over the current state, never in the middle of a commit."""
        with self._state_lock:
            return query(self._locked.state)

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # seen again by the outer loop, after this batch
                    break
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[_Submission]) -> None:
        error = self.failure
        if error is None:
            try:
                changes = [change for submission in batch for change in submission.changes]
                if changes:
                    with self._state_lock:
                        self._locked.commit(changes)
                    self.batches += 1
                for submission in batch:
                    if submission.result is not None:
                        self.results.append(submission.result)
                        self._report(submission.result)
            except BaseException as failure:  # a failed write: nothing after it may proceed
                error = self.failure = failure
        for submission in batch:
            if error is None:
                submission.done.set_result(None)
            else:
                submission.done.set_exception(error)


# --- the workers ---------------------------------------------------------------------


class Applier:
    """Runs a plan's changes on `parallelism` workers against one locked state."""

    def __init__(
        self,
        client: PlatformClient,
        locked: LockedState,
        *,
        parallelism: int,
        settler: Settler,
        cancel: threading.Event | None = None,
        clock: Clock = now_utc,
    ) -> None:
        self._client = client
        self._clock = clock
        self._locked = locked
        self._parallelism = max(1, parallelism)
        self._settler = settler
        self._cancel = cancel or threading.Event()
        self._pending: deque[Change] = deque()
        self._take_lock = threading.Lock()
        self._failure: BaseException | None = None
        self.interrupted = False
        self.batches = 0
        # Every id the state holds or this run recorded: an answer naming one of
        # them for another trunk is not believed (see `_claim`).
        self._claimed: set[str] = set()
        self._claim_lock = threading.Lock()

    def run(self, changes: Sequence[Change], report: Report) -> list[Result]:
        """Carry out `changes`; `report` each result once its changes are durable."""
        self._pending = deque(changes)
        self._claimed = self._locked.state.known_ids()
        with Committer(self._locked, report) as committer:
            workers = [
                threading.Thread(
                    target=self._work,
                    args=(committer,),
                    name=f"apply-{n}",
                    daemon=True,  # a second Ctrl-C must not wait for them
                )
                for n in range(min(self._parallelism, len(changes)))
            ]
            try:
                for worker in workers:
                    worker.start()
            except KeyboardInterrupt:  # a stop signal while starting: the started ones finish
                self.interrupted = True
                self._cancel.set()
            for worker in workers:
                self._join(worker)
        self.batches = committer.batches
        self.interrupted = self.interrupted or committer.interrupted
        failure = self._failure or committer.failure
        if failure is not None:
            raise failure
        self.interrupted = self.interrupted or self._cancel.is_set()
        return committer.results

    def _join(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            try:
                worker.join()
            except KeyboardInterrupt:
                # A Ctrl-C that reached us as an exception (no signal handler
                # installed): start nothing new, let in-flight requests land and
                # be recorded. A second one is not caught.
                if self.interrupted:
                    raise
                self.interrupted = True
                self._cancel.set()

    def _take(self) -> Change | None:
        with self._take_lock:
            if self._cancel.is_set() or not self._pending:
                return None
            return self._pending.popleft()

    def _work(self, committer: Committer) -> None:
        """Carry out changes one after another, the intents one change ahead.

        A worker holds two changes: the one it carries out, whose intent is durable,
        and the next, whose intent is being made durable meanwhile. Each answer is
        submitted together with the intent of the change after next, and the worker
        goes on at once: the write-ahead rule needs only the next intent durable
        before its create is sent (waited for below), and a result is reported only
        once its changes are durable (the committer does that). So a commit is
        never on a create's critical path.
        """
        try:
            current, current_intent = self._take_with_intent()
            following, following_intent = self._take_with_intent()
            first = _intent_records((current, current_intent), (following, following_intent))
            if first:
                committer.submit(first)
            # The submissions of the last two answers; the older one holds the intent
            # of `current` (each answer carries the intent of the change after next).
            submitted: deque[Future[None] | None] = deque()
            while current is not None:
                if len(submitted) == 2:
                    _wait(submitted.popleft())
                done = self.carry_out(current, current_intent, committer)
                after, after_intent = self._take_with_intent()
                batch = done.changes + _intent_records((after, after_intent))
                pending = None
                if batch or done.result is not None:
                    pending = committer.submit_later(batch, done.result)
                submitted.append(pending)
                current, current_intent = following, following_intent
                following, following_intent = after, after_intent
            for pending in submitted:
                _wait(pending)
        except BaseException as error:  # a failed state write: stop everything, say why
            self._failure = self._failure or error
            self._cancel.set()

    def _take_with_intent(self) -> tuple[Change | None, Intent | None]:
        change = self._take()
        if change is None or change.action not in CREATING:
            return change, None
        assert change.desired is not None  # creating changes always carry their entry
        return change, _new_intent(change.desired, _replaced_id(change), self._now())

    def _now(self) -> str:
        return stamp(self._clock())

    def _sendable(self, name: str, intent: Intent, committer: Committer) -> Intent:
        """`intent`, or a copy recorded now if it is older than SEND_SLACK (the create
        before it was slow): the settler's bound holds only for a timely send."""
        now = self._clock()
        if (now - intent_started(name, intent)).total_seconds() <= SEND_SLACK:
            return intent
        fresh = intent.model_copy(update={"started_at": stamp(now)})
        committer.submit([RecordIntent(name, fresh)])
        return fresh

    def carry_out(self, change: Change, intent: Intent | None, committer: Committer) -> Outcome:
        """One change: a create (maybe replacing a trunk) or a deactivation."""
        if change.action in (PRUNE, RETIRE):
            return self._deactivate(change)
        assert change.desired is not None and intent is not None  # creating changes
        outcome = self._create(change.desired, intent, committer)
        replaced = _replaced_id(change)
        if replaced is None or outcome.result is None or outcome.result.status != CREATED:
            return outcome
        # The new id (and the old one retired) must be durable before the old
        # trunk is deactivated: a crash in between leaves a retire to finish.
        committer.submit(outcome.changes)
        try:
            self._client.deactivate(replaced)
        except ApiError as error:
            message = f"replaced {replaced}, not deactivated yet ({error}); apply retries it"
            return Outcome(outcome.result._replace(message=message))
        message = f"replaced {replaced}, now deactivated"
        return Outcome(outcome.result._replace(message=message), (Unretire(replaced),))

    def _deactivate(self, change: Change) -> Outcome:
        trunk_id = change.trunk_id or ""
        if self._cancel.is_set():
            return Outcome(None)
        try:
            self._client.deactivate(trunk_id)
        except ApiError as error:
            return Outcome(Result(change.name, FAILED, trunk_id, f"not deactivated: {error}"))
        forget: StateChange = (
            ForgetTrunk(change.name, trunk_id) if change.action == PRUNE else Unretire(trunk_id)
        )
        return Outcome(Result(change.name, DEACTIVATED, trunk_id), (forget,))

    def _create(self, trunk: DesiredTrunk, intent: Intent, committer: Committer) -> Outcome:
        """Send a create whose intent is durable; resolve an unknown outcome before resending."""
        # Imported here: the client module pulls in httpx.
        from trunksync.client import OutcomeUnknown

        name = trunk.name

        def timely() -> None:  # before every attempt the client makes, its retries too
            nonlocal intent
            intent = self._sendable(name, intent, committer)

        for attempt in range(1, MAX_ATTEMPTS + 1):
            if self._cancel.is_set():  # start nothing new; the intent was never used
                return Outcome(None, (ForgetIntent(name),))
            try:
                trunk_id = self._client.create_trunk(
                    trunk.request_body(), redact=_secrets(trunk), before_send=timely
                )
                self._claim(trunk_id)
            except OutcomeUnknown as error:
                settled = self._settle(name, intent, error, committer)
                if settled is not None:
                    return settled
                if attempt == MAX_ATTEMPTS:
                    break
                # Surely not created: a new intent, durable, then send again.
                intent = _new_intent(trunk, intent.replaces, self._now())
                committer.submit([RecordIntent(name, intent)])
                continue
            except ApiError as error:
                return Outcome(Result(name, FAILED, message=str(error)), (ForgetIntent(name),))
            recorded = _record_id(name, intent, trunk_id, utc_now())
            return Outcome(Result(name, CREATED, trunk_id), (recorded,))
        message = f"not created after {MAX_ATTEMPTS} attempts"
        return Outcome(Result(name, FAILED, message=message), (ForgetIntent(name),))

    def _claim(self, trunk_id: str) -> None:
        """Take `trunk_id` for the create that was answered with it, or raise
        OutcomeUnknown when another trunk has it already: recording it twice would
        lose whatever the create really made (the list decides instead)."""
        from trunksync.client import OutcomeUnknown

        with self._claim_lock:
            taken = trunk_id in self._claimed
            self._claimed.add(trunk_id)
        if taken:
            raise OutcomeUnknown(
                f"the API answered with {trunk_id}, an id already recorded for another trunk",
                answered=True,
            )

    def _settle(
        self, name: str, intent: Intent, error: ApiError, committer: Committer
    ) -> Outcome | None:
        """The outcome of an unknown create, or None when it surely did not happen."""
        answered = bool(getattr(error, "answered", False))
        try:
            resolution = self._settler.resolve(
                name, intent, lambda: committer.read(State.known_ids), answered
            )
        except ApiError as list_error:
            message = f"{error}; the platform could not be checked ({list_error}); run apply again"
            return Outcome(Result(name, UNKNOWN, message=message))
        if resolution is None:
            message = f"{error}; interrupted before the platform could be checked; run apply again"
            return Outcome(Result(name, UNKNOWN, message=message))
        if resolution.kind == ABSENT:
            return None
        if resolution.kind == ADOPT:
            found = resolution.candidates[0]
            with self._claim_lock:
                self._claimed.add(found.trunk_id)
            recorded = _record_id(name, intent, found.trunk_id, found.created_at or utc_now())
            result = Result(name, CREATED, found.trunk_id, f"adopted after: {error}")
            return Outcome(result, (recorded,))
        if resolution.kind == AMBIGUOUS:
            return Outcome(Result(name, UNKNOWN, message=ambiguity_message(resolution)))
        return Outcome(Result(name, UNKNOWN, message=foreign_message(name, resolution.candidates)))


# --- intents and records -------------------------------------------------------------


def _wait(submission: Future[None] | None) -> None:
    if submission is not None:
        submission.result()


def _intent_records(*taken: tuple[Change | None, Intent | None]) -> tuple[StateChange, ...]:
    return tuple(RecordIntent(change.name, intent) for change, intent in taken if change and intent)


def _replaced_id(change: Change) -> str | None:
    return change.trunk_id if change.action == REPLACE else None


def _new_intent(
    trunk: DesiredTrunk, replaces: str | None = None, started_at: str | None = None
) -> Intent:
    return Intent(
        replaces=replaces,
        trunk_type=trunk.trunk_type,  # type: ignore[arg-type]
        config=trunk.config,
        secret_fingerprints=fingerprints.fingerprint_secrets(trunk.secrets),
        request_fingerprint=fingerprints.fingerprint_request(trunk.request_body()),
        started_at=started_at or utc_now(),
    )


new_intent = _new_intent


def _record_id(name: str, intent: Intent, trunk_id: str, created_at: str) -> RecordId:
    """The id for `name`, closing its intent; a replaced trunk is retired in the same change."""
    since = utc_now() if intent.replaces else None
    record = intent.record(trunk_id, _readable_time(created_at))
    return RecordId(name, record, intent.replaces, since)


def _readable_time(text: str) -> str:
    """`text` (the platform's creation time), or now when it cannot be read: the
    state only holds times it can read, and the trunk must be recorded anyway."""
    try:
        parse_time(text)
    except ValueError:
        return utc_now()
    return text


def created_change(trunk: DesiredTrunk, trunk_id: str, created_at: str | None = None) -> RecordId:
    """`import` and adoption: record `trunk_id` as what `trunk` asks for."""
    return _record_id(trunk.name, _new_intent(trunk), trunk_id, created_at or utc_now())


def record_created(
    state: State, trunk: DesiredTrunk, trunk_id: str, created_at: str | None = None
) -> None:
    """Apply `created_change` to an in-memory state (tests, benchmarks)."""
    apply_change(state, created_change(trunk, trunk_id, created_at))


def _secrets(trunk: DesiredTrunk) -> list[str]:
    return [secret.get_secret_value() for secret in trunk.secrets.values()]
