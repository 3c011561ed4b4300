"""Ctrl-C and SIGTERM as a cancel token: answered within a bounded time.

A cancelled CI job sends SIGTERM, a person presses Ctrl-C: either way the run
starts nothing new, lets what is in flight be answered and recorded, leaves
its `with` blocks (the state is folded) and exits 130 (SIGINT) or 143
(SIGTERM) with one line. The first signal sets the cancel token and raises
`Stop` (a KeyboardInterrupt) in the main thread, which the apply engine turns
into "finish what is in flight"; outside the engine it simply unwinds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Stop(KeyboardInterrupt):
    """A stop signal arrived (SIGINT or SIGTERM)."""


class SignalCancel:
    """A cancel token set by SIGINT/SIGTERM while `installed()` is active."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.signum: int | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(signal.Signals(self.signum or signal.SIGINT), 130)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.cancel.set()
        raise Stop()

    @contextlib.contextmanager
    def installed(self) -> Iterator[SignalCancel]:
        """Install the handlers (main thread only; elsewhere nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        # A signal the parent chose to ignore (a background job's SIGINT) stays ignored.
        wanted = [s for s in EXIT_CODES if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {signum: signal.signal(signum, self._handle) for signum in wanted}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
