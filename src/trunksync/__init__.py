"""trunksync: declarative outbound SIP trunks (plan, apply, state).

The Python API (trunksync.api) is importable from here, lazily (PEP 562): a
plain `import trunksync`, as the CLI does, loads none of it, so `trunksync
--help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from trunksync.api import (
        ApplyCancelled,
        ApplyReport,
        apply_plan,
        connect,
        import_trunk,
        load_desired,
        load_plan,
        make_options,
        make_plan,
        migrate_state,
        open_state,
        plan_document,
        state_history,
    )

__all__ = [
    "ApplyCancelled",
    "ApplyReport",
    "__version__",
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
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from trunksync import api

        return getattr(api, name)
    raise AttributeError(f"module 'trunksync' has no attribute {name!r}")
