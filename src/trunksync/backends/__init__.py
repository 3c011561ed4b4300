"""State backends: where the state lives (a local file, PostgreSQL).

Everything outside this package talks to a backend through the small typed
seam in `base` and gets one from `open_backend`, which takes what `--state`
(or TRUNKSYNC_STATE) says: a path, or a postgresql:// URL.
"""

from __future__ import annotations

from trunksync.backends.base import (
    BackendIdentity,
    HistoryEntry,
    LockedState,
    StateBackend,
)

__all__ = ["BackendIdentity", "HistoryEntry", "LockedState", "StateBackend", "open_backend"]


def open_backend(spec: str) -> StateBackend:
    """The backend `spec` names: a postgresql:// (or postgres://) URL, or a file path."""
    if spec.startswith(("postgresql://", "postgres://")):
        from trunksync.backends.postgres import PostgresBackend

        return PostgresBackend.from_url(spec)
    from pathlib import Path

    from trunksync.backends.local import LocalBackend

    return LocalBackend(Path(spec))
