"""A loopback emulator of the platform API, for tests and dry runs.

Needs the optional extra `trunksync[emulator]` (fastapi, uvicorn). Importing
this package is cheap: EmulatorConfig and FAULT_KINDS are plain Python, and the
fastapi/uvicorn parts load on first use of create_app, serve, running_emulator
or start_in_thread.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trunksync.emulator.config import FAULT_KINDS, NO_FAULT, EmulatorConfig

if TYPE_CHECKING:
    from trunksync.emulator.app import create_app
    from trunksync.emulator.server import (
        RunningEmulator,
        running_emulator,
        serve,
        start_in_thread,
    )

__all__ = [
    "FAULT_KINDS",
    "NO_FAULT",
    "EmulatorConfig",
    "RunningEmulator",
    "create_app",
    "running_emulator",
    "serve",
    "start_in_thread",
]

_LAZY = {
    "create_app": "trunksync.emulator.app",
    "RunningEmulator": "trunksync.emulator.server",
    "running_emulator": "trunksync.emulator.server",
    "serve": "trunksync.emulator.server",
    "start_in_thread": "trunksync.emulator.server",
}


def __getattr__(name: str) -> Any:
    # Only reached for names not defined above: load the fastapi half on demand.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
