"""Settings of the API emulator; plain Python so it imports without fastapi."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The fault kinds a create call can be given; see trunksync.emulator.faults.
FAULT_KINDS: tuple[str, ...] = ("error-before", "error-after", "drop-after", "slow", "rate-limit")
# A queue entry that lets one create call through untouched.
NO_FAULT = "none"


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator instance behaves.

    `faults` is the initial FIFO queue of per-create faults (FAULT_KINDS or
    "none"); once it is empty, `fault_rate` decides at random, drawing from
    `fault_kinds` with random.Random(seed).
    """

    # repr=False: the key must never end up in a log line or a test report.
    api_key: str = field(repr=False)
    data_file: Path | None = None
    latency_ms: int = 0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    seed: int | None = None
    slow_seconds: float = 5.0
    retry_after_seconds: int = 1
    faults: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key must not be empty")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")
        if self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must be >= 0")
        check_fault_kinds(self.fault_kinds, allow_none=False)
        if self.fault_rate > 0 and not self.fault_kinds:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        check_fault_kinds(self.faults, allow_none=True)


def check_fault_kinds(kinds: tuple[str, ...] | list[str], *, allow_none: bool) -> None:
    """Raise ValueError naming the first unknown kind and the allowed ones."""
    allowed = FAULT_KINDS + ((NO_FAULT,) if allow_none else ())
    for kind in kinds:
        if kind not in allowed:
            raise ValueError(f"unknown fault kind {kind!r} (allowed: {', '.join(allowed)})")
