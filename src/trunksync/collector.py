"""Pausing Python's cyclic garbage collector while long-lived data is built.

Loading a file, a state or the platform's list allocates many objects that hold
no reference cycles and live until the end of the command: reference counting
frees what is dropped, and each allocation burst would only make the cyclic
collector rescan everything live again (3-4x the parse itself for 10,000 trunks,
see docs/performance.md). The setting found on entry is restored on exit.
"""

from __future__ import annotations

import gc


class CollectorPause:
    """`with CollectorPause() as pause:` collects nothing until `pause.resume()` or
    the end of the block, then restores the setting found on entry (nested pauses
    leave it off until the outermost one ends)."""

    def __enter__(self) -> CollectorPause:
        self._was_enabled = gc.isenabled()
        gc.disable()
        return self

    def resume(self) -> None:
        """Freeze what exists now out of every later collection, then collect again:
        for a long run that allocates around data built during the pause."""
        gc.freeze()
        if self._was_enabled:
            gc.enable()

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()
