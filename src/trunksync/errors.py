"""The one exception family trunksync raises for user-facing failures.

The CLI turns any TrunksyncError into a one-line message and its exit code in
exactly one place (cli.main); nothing else prints tracebacks or exits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

# `str(ConfigError)` lists this many problems, then a count of the rest, so a hostile
# file cannot flood a terminal or a log; `.problems` keeps them for machine output.
SHOWN_PROBLEMS = 20


class TrunksyncError(Exception):
    """A failure the user can act on; str(error) is the whole message."""

    exit_code = 1


class Problem(NamedTuple):
    """One problem in a file, at a 1-based line and column when they are known."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.message}" if place else self.message


class ConfigError(TrunksyncError):
    """The desired-state file is unreadable or invalid (all problems at once).

    `problems` holds the problems kept (at most a bounded number), `omitted` the
    count of further ones that were found but not kept.
    """

    def __init__(self, problems: Sequence[Problem | str], omitted: int = 0) -> None:
        self.problems: list[Problem] = [
            item if isinstance(item, Problem) else Problem("", None, None, item)
            for item in problems
        ]
        self.omitted = omitted
        super().__init__(_bounded_listing(self.problems, omitted))


def _bounded_listing(problems: Sequence[Problem], omitted: int) -> str:
    lines = [str(problem) for problem in problems[:SHOWN_PROBLEMS]]
    more = len(problems) - len(lines) + omitted
    if more:
        lines.append(f"... and {more} more problem(s)")
    return "\n".join(lines)


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
