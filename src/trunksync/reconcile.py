"""Resolve creates whose outcome is unknown, from the platform's list of trunks.

Pure functions: given an intent (or a desired entry) and the remote list, say
what is true. The callers do the I/O and record the answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from trunksync.state import Intent, parse_time

ADOPT, ABSENT, AMBIGUOUS, FOREIGN = "adopt", "absent", "ambiguous", "foreign"
# Clocks of this machine and of the platform may disagree a little.
CLOCK_SKEW = timedelta(minutes=2)


class RemoteTrunk(NamedTuple):
    """An active trunk as GET /sip/list shows it (never with its config)."""

    trunk_id: str
    trunk_name: str
    trunk_type: str
    created_at: str


class Resolution(NamedTuple):
    name: str
    kind: str  # ADOPT | ABSENT | AMBIGUOUS | FOREIGN
    candidates: tuple[RemoteTrunk, ...]


def unknown_trunks(name: str, remote: list[RemoteTrunk], known_ids: set[str]) -> list[RemoteTrunk]:
    """Active remote trunks with this name that the state does not know."""
    return [t for t in remote if t.trunk_name == name and t.trunk_id not in known_ids]


def resolve_intent(
    name: str, intent: Intent, remote: list[RemoteTrunk], known_ids: set[str]
) -> Resolution:
    """adopt: exactly one trunk of this name and type appeared since the intent;
    absent: none did (creating again is safe once the request has settled);
    ambiguous: several did; foreign: one exists but is older than the intent, or
    of another type (the plan calls that a conflict and creates nothing either)."""
    named = unknown_trunks(name, remote, known_ids)
    same = [t for t in named if t.trunk_type == intent.trunk_type]
    recent = [t for t in same if _not_before(t.created_at, intent.started_at)]
    if len(recent) == 1 and len(same) == 1:
        return Resolution(name, ADOPT, tuple(recent))
    if len(same) > 1:
        return Resolution(name, AMBIGUOUS, tuple(same))
    return Resolution(name, FOREIGN if named else ABSENT, tuple(same or named))


def _not_before(created_at: str, started_at: str) -> bool:
    try:
        return parse_time(created_at) >= parse_time(started_at) - CLOCK_SKEW
    except ValueError:
        # An unreadable time cannot prove the trunk older: adopting is safer
        # than creating a second one.
        return True


def ambiguity_message(resolution: Resolution) -> str:
    ids = ", ".join(f"{t.trunk_id} (created {t.created_at})" for t in resolution.candidates)
    first = resolution.candidates[0].trunk_id
    return (
        f"cannot tell which trunk named {resolution.name!r} trunksync created: {ids}. "
        f"Adopt the right one with: trunksync import {_quoted(resolution.name)} {first}  "
        "(and deactivate the others on the platform if they are duplicates)"
    )


def foreign_message(name: str, trunks: list[RemoteTrunk] | tuple[RemoteTrunk, ...]) -> str:
    ids = ", ".join(t.trunk_id for t in trunks)
    return (
        f"an active trunk named {name!r} already exists on the platform ({ids}) but the state "
        f"does not know it; not creating a second one. Adopt it with: "
        f"trunksync import {_quoted(name)} {trunks[0].trunk_id}"
    )


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "'\\''") + "'"
