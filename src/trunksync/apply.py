"""Carry out the creates of a plan, in parallel, recording every id durably.

For each create: record a write-ahead intent, send, then replace the intent
with the id (or drop it when the server surely created nothing). An intent
left behind means "outcome unknown"; it is never silently retried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import NamedTuple

from trunksync import fingerprints
from trunksync.client import OutcomeUnknown, PlatformClient
from trunksync.config import DesiredTrunk
from trunksync.errors import ApiError
from trunksync.journal import Journal
from trunksync.plan import Change
from trunksync.state import Intent, State, TrunkRecord, utc_now

CREATED, FAILED, UNKNOWN = "created", "failed", "unknown"


class Result(NamedTuple):
    name: str
    status: str
    trunk_id: str | None = None
    message: str | None = None


Report = Callable[[Result], None]


class Applier:
    """Runs creates on a thread pool; `stop()` lets the in-flight ones finish."""

    def __init__(self, client: PlatformClient, journal: Journal, parallelism: int) -> None:
        self._client = client
        self._journal = journal
        self._parallelism = max(1, parallelism)
        self._stopping = threading.Event()
        self.interrupted = False

    def stop(self) -> None:
        self._stopping.set()

    def run(self, creates: list[Change], report: Report) -> list[Result]:
        results: list[Result] = []
        pending = [change.desired for change in creates if change.desired is not None]
        with ThreadPoolExecutor(self._parallelism, thread_name_prefix="create") as pool:
            running: set[Future[Result]] = set()
            while (pending and not self._stopping.is_set()) or running:
                while pending and len(running) < self._parallelism and not self._stopping.is_set():
                    running.add(pool.submit(self.create_one, pending.pop(0)))
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

    def create_one(self, trunk: DesiredTrunk) -> Result:
        body = trunk.request_body()
        intent = Intent(
            trunk_type=trunk.trunk_type,  # type: ignore[arg-type]
            request_fingerprint=fingerprints.fingerprint_request(body),
            started_at=utc_now(),
        )
        self._journal.commit(lambda state: state.intents.__setitem__(trunk.name, intent))
        secrets = [secret.get_secret_value() for secret in trunk.secrets.values()]
        try:
            trunk_id = self._client.create_trunk(body, redact=secrets)
        except OutcomeUnknown as error:
            return Result(trunk.name, UNKNOWN, message=str(error))
        except ApiError as error:
            self._journal.commit(lambda state: forget_intent(state, trunk.name))
            return Result(trunk.name, FAILED, message=str(error))
        self._journal.commit(lambda state: record_created(state, trunk, trunk_id))
        return Result(trunk.name, CREATED, trunk_id)


def record_created(
    state: State, trunk: DesiredTrunk, trunk_id: str, created_at: str | None = None
) -> None:
    """Record `trunk_id` as the trunk for this entry and close its intent."""
    state.trunks[trunk.name] = TrunkRecord(
        trunk_id=trunk_id,
        trunk_type=trunk.trunk_type,  # type: ignore[arg-type]
        config=trunk.config,
        secret_fingerprints=fingerprints.fingerprint_secrets(trunk.secrets),
        created_at=created_at or utc_now(),
    )
    state.intents.pop(trunk.name, None)


def forget_intent(state: State, name: str) -> None:
    state.intents.pop(name, None)
