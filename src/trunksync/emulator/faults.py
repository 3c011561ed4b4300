"""Which create call gets which fault: a FIFO queue first, then chance."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable

from trunksync.emulator.config import NO_FAULT, EmulatorConfig, check_fault_kinds


class FaultPicker:
    """Hands out at most one fault kind per create call."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._rate = config.fault_rate
        self._kinds = config.fault_kinds
        self._seed = config.seed
        self._rng = random.Random(config.seed)
        self._queue: deque[str] = deque(config.faults)

    def push(self, kinds: Iterable[str]) -> None:
        """Queue entries (fault kinds or "none") for the next create calls, in order."""
        entries = list(kinds)
        check_fault_kinds(entries, allow_none=True)
        self._queue.extend(entries)

    def pending(self) -> list[str]:
        return list(self._queue)

    def reset(self) -> None:
        # Re-seeding makes a reset emulator replay the same random faults.
        self._queue.clear()
        self._rng = random.Random(self._seed)

    def next(self) -> str | None:
        """The fault for this create call, or None for a normal answer."""
        if self._queue:
            entry = self._queue.popleft()
            return None if entry == NO_FAULT else entry
        if self._rate > 0 and self._rng.random() < self._rate:
            return self._rng.choice(self._kinds)
        return None
