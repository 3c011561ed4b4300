"""The one exception family trunksync raises for user-facing failures.

The CLI turns any TrunksyncError into a one-line message and its exit code in
exactly one place (cli.main); nothing else prints tracebacks or exits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrunksyncError(Exception):
    """A failure the user can act on; str(error) is the whole message."""

    exit_code = 1


class ConfigError(TrunksyncError):
    """The desired-state file is unreadable or invalid (all problems at once)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StateError(TrunksyncError):
    """The state file cannot be used (corrupt, newer format, locked...)."""


class LockError(StateError):
    """Another run holds the state lock."""


class ApiError(TrunksyncError):
    """The platform API refused a request or could not be reached."""


class Interrupted(TrunksyncError):
    """The user pressed Ctrl-C; in-flight work was recorded first."""

    exit_code = 130


class ApplyFailed(TrunksyncError):
    """Apply finished, but some trunks failed; the summary says which."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
