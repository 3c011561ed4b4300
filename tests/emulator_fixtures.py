"""Pytest fixtures that run the API emulator in a thread of the test process.

Use `emulator` for a default instance (api key "test-key"), or
`make_emulator(**overrides)` for one with other EmulatorConfig fields, e.g.
`make_emulator(faults=["error-after"], slow_seconds=0.5)`. Every instance
started by a test is stopped when the test ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from trunksync.emulator import EmulatorConfig, RunningEmulator, start_in_thread

TEST_API_KEY = "test-key"


@dataclass
class EmulatorHandle:
    """A running emulator: its URL, key, and the admin routes as methods."""

    url: str
    api_key: str
    running: RunningEmulator

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on this emulator that sends the key (close it, or use `with`)."""
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_emulator/{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def trunks(self) -> list[dict[str, Any]]:
        """Every trunk, deactivated ones too, with trunk_config and "active"."""
        trunks: list[dict[str, Any]] = self._admin("GET", "trunks")["trunks"]
        return trunks

    def active_trunks(self) -> list[dict[str, Any]]:
        return [trunk for trunk in self.trunks() if trunk["active"]]

    def stats(self) -> dict[str, int]:
        """create_calls, trunks_created, list_calls, deactivate_calls."""
        stats: dict[str, int] = self._admin("GET", "stats")
        return stats

    def queue_faults(self, kinds: list[str]) -> list[str]:
        """Queue faults for the next create calls ("none" = no fault); returns the queue."""
        queue: list[str] = self._admin("POST", "faults", json={"create": kinds})["create"]
        return queue

    def reset(self) -> None:
        """Forget trunks, queued faults and stats."""
        self._admin("POST", "reset")


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., EmulatorHandle]]:
    """Factory: make_emulator(**EmulatorConfig overrides) -> EmulatorHandle."""
    started: list[RunningEmulator] = []

    def make(**overrides: Any) -> EmulatorHandle:
        overrides.setdefault("api_key", TEST_API_KEY)
        config = EmulatorConfig(**overrides)
        running = start_in_thread(config)
        started.append(running)
        return EmulatorHandle(url=running.url, api_key=config.api_key, running=running)

    yield make
    for running in reversed(started):
        running.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    """A default emulator (api key "test-key", no faults, no latency)."""
    return make_emulator()
