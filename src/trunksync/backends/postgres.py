"""The PostgreSQL backend (needs trunksync[postgres]): team state, one row per trunk."""

from __future__ import annotations

from trunksync.errors import StateError


class PostgresBackend:
    @classmethod
    def from_url(cls, url: str) -> PostgresBackend:
        raise StateError("the PostgreSQL backend is not available yet")
