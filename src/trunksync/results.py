"""What apply reports for each change; a light module, so rendering needs no HTTP stack."""

from __future__ import annotations

from typing import NamedTuple

CREATED, FAILED, UNKNOWN, DEACTIVATED = "created", "failed", "unknown", "deactivated"


class Result(NamedTuple):
    name: str
    status: str
    trunk_id: str | None = None
    message: str | None = None
