"""The typed Python API: everything the CLI does, without click.

    import trunksync
    desired = trunksync.load_desired("trunks.yaml")
    backend = trunksync.open_state("state/trunks.json")
    with trunksync.connect("http://127.0.0.1:8080", api_key) as client:
        report = trunksync.apply_plan(desired, backend, client, on_result=print)

The CLI's commands only parse flags, call these functions and print. This
module never imports click (a test holds it to that).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, NamedTuple

from trunksync.defaults import DEFAULT_API_URL, DEFAULT_PARALLELISM, DEFAULT_STATE
from trunksync.errors import TrunksyncError, did_you_mean

if TYPE_CHECKING:
    from concurrent.futures import Future

    from trunksync.apply import Clock, Listing, Notice, Report, Settler, Wait
    from trunksync.backends.base import BackendIdentity, HistoryEntry, LockedState, StateBackend
    from trunksync.client import PlatformClient
    from trunksync.config import Desired
    from trunksync.plan import Plan, PlanOptions
    from trunksync.planfile import SavedPlan
    from trunksync.reconcile import RemoteTrunk, Resolution
    from trunksync.results import Result
    from trunksync.state import State

__all__ = [
    "ApplyCancelled",
    "ApplyReport",
    "apply_plan",
    "connect",
    "import_trunk",
    "load_desired",
    "load_plan",
    "make_options",
    "make_plan",
    "migrate_state",
    "open_state",
    "plan_document",
    "state_history",
]

Approve = Callable[["Plan"], bool]
OnResolution = Callable[["Resolution"], None]


class ApplyCancelled(TrunksyncError):
    """The plan was shown and not approved: nothing was changed."""


class ApplyReport(NamedTuple):
    """What an apply did: the plan it ran, how earlier unknown creates were resolved,
    one result per change carried out, and whether it was cancelled part-way."""

    plan: Plan
    resolutions: list[Resolution]
    results: list[Result]
    interrupted: bool

    @property
    def not_started(self) -> int:
        return len(self.plan.creates()) - len(self.results)

    @property
    def counts(self) -> dict[str, int]:
        from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN

        statuses = [result.status for result in self.results]
        return {s: statuses.count(s) for s in (CREATED, DEACTIVATED, FAILED, UNKNOWN)}

    @property
    def problems(self) -> int:
        """Changes not carried out: failures, unknown outcomes, and conflicts."""
        from trunksync.plan import CONFLICT

        counts = self.counts
        return counts["failed"] + counts["unknown"] + self.plan.summary()[CONFLICT]

    @property
    def changed(self) -> bool:
        """Whether the run changed the platform or the state."""
        from trunksync.reconcile import ABSENT, ADOPT

        adopted = any(r.kind in (ADOPT, ABSENT) for r in self.resolutions)
        return adopted or any(r.status in ("created", "deactivated") for r in self.results)


# --- loading -------------------------------------------------------------------------


def load_desired(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    allow_plaintext_secrets: bool = False,
    allow_missing_secrets: bool = False,
    stdin: BinaryIO | None = None,
) -> Desired:
    """Read, interpolate and validate a desired-state file ("-": stdin)."""
    from trunksync import config

    environ = os.environ if env is None else env
    return config.load_desired(
        path,
        environ,
        allow_plaintext_secrets,
        allow_missing_secrets=allow_missing_secrets,
        stdin=stdin,
    )


def open_state(spec: str | Path = DEFAULT_STATE) -> StateBackend:
    """The state backend `spec` names: a file path, or a postgresql:// URL."""
    from trunksync.backends import open_backend

    return open_backend(str(spec))


def env_api_key() -> str:
    """$TRUNKSYNC_API_KEY, or a one-line error saying to set it."""
    return _checked_key(os.environ.get("TRUNKSYNC_API_KEY", ""))


def _checked_key(key: str) -> str:
    if not key:
        raise TrunksyncError("TRUNKSYNC_API_KEY is not set: export the platform API key first")
    return key


def connect(
    api_url: str = DEFAULT_API_URL,
    api_key: str | None = None,
    *,
    timeout: float = 30.0,
    cancel: threading.Event | None = None,
    abort: threading.Event | None = None,
    secrets: Iterable[str] = (),
) -> PlatformClient:
    """A client for the platform API (`api_key` defaults to $TRUNKSYNC_API_KEY)."""
    from trunksync.client import PlatformClient, check_api_url

    return PlatformClient(
        check_api_url(api_url),
        env_api_key() if api_key is None else _checked_key(api_key),
        timeout=timeout,
        cancel=cancel,
        abort=abort,
        secrets=list(secrets),
    )


def make_options(
    desired: Desired,
    state: State,
    targets: Iterable[str] = (),
    replace: Iterable[str] = (),
    prune: bool = False,
) -> PlanOptions:
    """PlanOptions, refusing names that match nothing."""
    from trunksync.plan import PlanOptions

    targets, replace = tuple(targets), tuple(replace)
    in_file = {trunk.name for trunk in desired.trunks}
    known = in_file | set(state.trunks)
    for name in targets:
        if name not in known:
            raise TrunksyncError(f"--target {name!r} matches no entry{did_you_mean(name, known)}")
    for name in replace:
        if name not in in_file or name not in state.trunks:
            raise TrunksyncError(
                f"--replace {name!r}: only an entry that is both in the file and in the state "
                f"can be replaced{did_you_mean(name, in_file & set(state.trunks))}"
            )
    return PlanOptions(frozenset(targets), frozenset(replace), prune)


# --- planning ------------------------------------------------------------------------


def make_plan(
    desired: Desired,
    state: State,
    *,
    remote: list[RemoteTrunk] | None = None,
    options: PlanOptions | None = None,
    max_deactivate_share: float = 0.3,
    force: bool = False,
) -> Plan:
    """The plan for `desired` against `state` (and the platform's list, when given),
    refused when it deactivates more than the allowed share."""
    from trunksync.plan import DEFAULT_OPTIONS, check_safety, compute_plan

    the_plan = compute_plan(desired, state, remote, options or DEFAULT_OPTIONS)
    check_safety(the_plan, state, max_deactivate_share, force)
    return the_plan


def plan_document(
    the_plan: Plan,
    *,
    desired: Desired,
    backend: StateBackend,
    state_spec: str,
    api_url: str,
    options: PlanOptions,
    max_deactivate_share: float,
    force: bool,
    planned_on: State | Literal["now"] | None = "now",
) -> dict[str, Any]:
    """The body of a saved plan (sign and write it with `planfile.save`).

    `planned_on` is the state `the_plan` was computed from (None: there was none),
    whose lineage and serial apply checks; by default the backend's, read now. Pass
    it: a run that lands between the plan and a second read would go unnoticed."""
    from trunksync import planfile
    from trunksync.client import check_api_url

    if isinstance(planned_on, str):
        planned_on = backend.load() if backend.exists() else None
    return planfile.make_body(
        the_plan,
        desired=desired,
        state=planned_on,
        state_spec=spec_without_password(state_spec),
        backend=backend.identity().to_json(),
        api_url=check_api_url(api_url),
        options=options,
        safety=planfile.Safety(max_deactivate_share, force),
    )


def load_plan(path: str | Path, api_key: str | None = None) -> SavedPlan:
    """A saved plan, verified with the plan key derived from `api_key`."""
    from trunksync import planfile

    key = api_key if api_key is not None else os.environ.get("TRUNKSYNC_API_KEY", "")
    if not key:
        raise TrunksyncError("TRUNKSYNC_API_KEY is not set: it is needed to verify a saved plan")
    return planfile.load(Path(path), key)


def spec_without_password(spec: str) -> str:
    """A state spec safe to record and print: a URL loses its password (user:pw@ and
    ?password=/sslpassword=; libpq finds it again in PGPASSWORD or ~/.pgpass), the rest
    of it kept as written (several hosts, an IPv6 host)."""
    from trunksync.backends.pg_url import without_password

    if "://" not in spec:
        return spec
    return without_password(spec)


# --- applying ------------------------------------------------------------------------


def apply_plan(
    desired: Desired,
    backend: StateBackend,
    client: PlatformClient,
    *,
    targets: Iterable[str] = (),
    replace: Iterable[str] = (),
    prune: bool = False,
    max_deactivate_share: float = 0.3,
    force: bool = False,
    saved: SavedPlan | None = None,
    parallelism: int = DEFAULT_PARALLELISM,
    timeout: float = 30.0,
    lock_timeout: float = 0.0,
    cancel: threading.Event | None = None,
    approve: Approve | None = None,
    on_resolution: OnResolution | None = None,
    on_result: Report | None = None,
    on_notice: Notice | None = None,
    clock: Clock | None = None,
    wait: Wait | None = None,
) -> ApplyReport:
    """Plan against the platform's list and carry the plan out, under the state lock.

    With `saved`, exactly that plan runs (its own options), or nothing does.
    `approve(plan)` is asked before anything is sent (None: approved); returning
    False raises ApplyCancelled. `on_result` sees each result once it is durable;
    setting `cancel` stops the run: nothing new starts, in-flight work is recorded.
    """
    from trunksync import planfile
    from trunksync.apply import Applier, Settler, now_utc

    cancel = cancel or threading.Event()
    if saved is not None:
        planfile.check_backend(saved, backend.identity().to_json())
        max_deactivate_share, force = saved.safety
    settler = Settler(
        client,
        # A request lasts as long as the client lets it: waiting less than that
        # before trusting "absent" could create a second trunk.
        max(timeout, client.timeout),
        cancel=cancel,
        clock=clock or now_utc,
        wait=wait,
        notice=on_notice or _ignore,
    )
    with (
        _ListAhead(settler) as first_list,
        backend.lock(
            timeout=lock_timeout, command="trunksync apply", on_locked=first_list.start
        ) as locked,
    ):
        if saved is not None:
            planfile.check_context(
                saved,
                desired=desired,
                state=locked.state if locked.existed else None,
                api_url=_base_url(client),
            )
            options = saved.options
        else:
            options = make_options(desired, locked.state, targets, replace, prune)
        had_intents = bool(locked.state.intents)
        resolutions = _resolve_earlier(locked, settler, first_list.result)
        for resolution in resolutions:
            if on_resolution is not None:
                on_resolution(resolution)
        # Resolving may have waited and recorded trunks: then the plan needs a list
        # asked for after that, not the first one.
        the_plan = make_plan(
            desired,
            locked.state,
            remote=client.list_trunks() if had_intents else first_list.result().trunks,
            options=options,
            max_deactivate_share=max_deactivate_share,
            force=force,
        )
        if saved is not None:
            planfile.check_changes(saved, the_plan)
            planfile.check_secrets(saved, the_plan)
        if approve is not None and not approve(the_plan):
            raise ApplyCancelled("apply cancelled; nothing was changed")
        changes = the_plan.creates()
        if not changes or cancel.is_set():
            return ApplyReport(the_plan, resolutions, [], cancel.is_set())
        applier = Applier(
            client,
            locked,
            parallelism=parallelism,
            settler=settler,
            cancel=cancel,
            clock=clock or now_utc,
        )
        results = applier.run(changes, on_result or _ignore)
        return ApplyReport(the_plan, resolutions, results, applier.interrupted)


def _resolve_earlier(
    locked: LockedState, settler: Settler, first_list: Callable[[], Listing]
) -> list[Resolution]:
    """Resolve the intents a previous run left, and record what the list says."""
    if not locked.state.intents:
        return []
    resolutions, changes = settler.resolve_all(locked.state, first_list())
    if changes:
        locked.commit(changes)
    return list(resolutions)


class _ListAhead:
    """The run's first `GET /sip/list`, asked for in a thread as soon as the lock is
    held: the platform answers while the state is read (for a big state, about as
    long as the list takes). Not before the lock: another run could create between
    the list and the state this run sees. Leaving the block waits for the request,
    which the client's deadline bounds and its cancel token stops."""

    def __init__(self, settler: Settler) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._settler = settler
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="trunksync-list")
        self._listing: Future[Listing] | None = None

    def __enter__(self) -> _ListAhead:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True)

    def start(self) -> None:
        self._listing = self._pool.submit(self._settler.listing)

    def result(self) -> Listing:
        if self._listing is None:  # a backend that never called `on_locked`
            self.start()
        assert self._listing is not None
        return self._listing.result()


def _where(backend: StateBackend) -> BackendIdentity:
    """The target a moved state names: a file as an absolute path, since whoever reads
    the mark may run from another folder (an identity keeps the path as given)."""
    identity = backend.identity()
    if identity.kind == "local":
        return identity._replace(location=os.path.abspath(identity.location))
    return identity


def _base_url(client: PlatformClient) -> str:
    return client.base_url


def _ignore(_: Any) -> None:
    return None


# --- import and state ----------------------------------------------------------------


def import_trunk(
    desired: Desired,
    backend: StateBackend,
    client: PlatformClient,
    name: str,
    trunk_id: str,
    *,
    lock_timeout: float = 0.0,
) -> None:
    """Record the existing, active trunk `trunk_id` as the file's entry `name`."""
    from trunksync.apply import created_change
    from trunksync.ids import is_trunk_id
    from trunksync.sanitize import printable

    shown_name, shown_id = printable(name), printable(trunk_id)
    if not is_trunk_id(trunk_id):
        raise TrunksyncError(f"{shown_id!r} is not a trunk id (ST_ then letters and digits)")
    entry = next((trunk for trunk in desired.trunks if trunk.name == name), None)
    if entry is None:
        raise TrunksyncError(
            f"{printable(desired.path)} has no trunk named {shown_name!r}: add the entry first"
        )
    with backend.lock(timeout=lock_timeout, command="trunksync import") as locked:
        state = locked.state
        recorded = state.trunks.get(name)
        if recorded is not None and recorded.trunk_id != trunk_id:
            raise TrunksyncError(
                f"{shown_name!r} is already recorded as {recorded.trunk_id}; "
                f"run 'trunksync state rm {shown_name!r}' first to replace it"
            )
        owner = next((n for n, r in state.trunks.items() if r.trunk_id == trunk_id), None)
        if owner is not None and owner != name:
            raise TrunksyncError(f"{shown_id} is already recorded for {printable(owner)!r}")
        remote = {trunk.trunk_id: trunk for trunk in client.list_trunks()}
        found = remote.get(trunk_id)
        if found is None:
            raise TrunksyncError(f"{shown_id} is not an active trunk of this API key")
        if (found.trunk_name, found.trunk_type) != (name, entry.trunk_type):
            raise TrunksyncError(
                f"{shown_id} is {printable(found.trunk_type)} trunk "
                f"{printable(found.trunk_name)!r} on the platform, "
                f"not {entry.trunk_type} trunk {shown_name!r}"
            )
        locked.commit([created_change(entry, trunk_id, found.created_at or None)])


def state_history(
    backend: StateBackend, limit: int = 50, *, lock_timeout: float = 0.0
) -> list[HistoryEntry]:
    """The backend's latest durable change batches (as the backend orders them).

    Read without the state lock (`lock_timeout` is accepted and not needed): each
    batch's history entry is written with the batch, in one transaction or one line,
    so a run in progress never shows half of one; taking the lock would need write
    access (a read-only role could not read history) and is refused on a state that
    `state migrate` moved away, whose history stays readable."""
    del lock_timeout
    if not backend.exists():
        return []
    return backend.history(limit)


def migrate_state(source: StateBackend, target: StateBackend, *, lock_timeout: float = 0.0) -> int:
    """Move the state from `source` to `target` (lineage kept, and the serial the source
    ends with); `target` must be empty. Returns the number of trunks moved.

    The source is marked as moved FIRST (a fenced write under its lock: every later
    lock of it is refused), and only then is the target seeded: a crash or a dropped
    connection at any point leaves at most one live copy of the lineage, never two.
    Run again after an interruption, it finishes: a source already marked as moved to
    this target is read as it was frozen, and a target already seeded with its
    lineage and serial is taken as done."""
    if source.identity() == target.identity():
        raise TrunksyncError("the source and the target of the migration are the same state")
    command = "trunksync state migrate"
    where = _where(target)
    state = source.moved_state()
    if state is None:
        with source.lock(timeout=lock_timeout, command=command) as locked:
            if not locked.existed:
                raise TrunksyncError(f"there is no state at {source.identity()} to migrate")
            if locked.state.intents:
                raise TrunksyncError(
                    "the state has creates whose outcome is unknown: run apply first to "
                    "resolve them; nothing was migrated"
                )
            if target.exists():  # its own refusal, while the source is still live
                target.seed(locked.state, command=command)
            source.mark_moved(where, command=command)
            state = locked.state.model_copy(deep=True)  # the serial after the mark
    elif state.moved_to != str(where):
        raise TrunksyncError(
            f"{source.identity()} was already moved to {state.moved_to}, not to "
            f"{target.identity()}: use that state; nothing was migrated"
        )
    _seed_moved(source, target, state.model_copy(update={"moved_to": None}), command)
    return len(state.trunks)


def _seed_moved(source: StateBackend, target: StateBackend, state: State, command: str) -> None:
    """Seed `target` with the state `source` was moved away with, or find it seeded."""
    try:
        if target.exists():
            current = target.load()
            if (current.lineage, current.serial) == (state.lineage, state.serial):
                return  # seeded by an earlier run that was interrupted after it
        target.seed(state, command=command)
    except TrunksyncError as error:
        raise TrunksyncError(
            f"{source.identity()} is marked as moved to {target.identity()}, but the target "
            f"could not be seeded ({error}); nothing is lost, and no copy is live until this "
            "is finished: run the same `trunksync state migrate` again"
        ) from None
