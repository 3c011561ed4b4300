"""Unit tests of reconcile: what the platform's list says about a create whose outcome
is unknown. Pure functions, so every case is a table row, no server."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

import pytest

from trunksync.reconcile import (
    ABSENT,
    ADOPT,
    AMBIGUOUS,
    FOREIGN,
    RemoteTrunk,
    Resolution,
    ambiguity_message,
    foreign_message,
    resolve_intent,
    unknown_trunks,
)
from trunksync.state import Intent, parse_time

STARTED = "2026-11-27T10:00:00.000000Z"
NAME = "Exotel India"


def intent(trunk_type: str = "exotel", started_at: str = STARTED) -> Intent:
    return Intent(trunk_type=trunk_type, request_fingerprint="fp", started_at=started_at)


def trunk(
    trunk_id: str,
    name: str = NAME,
    trunk_type: str = "exotel",
    created_at: str = "2026-11-27T10:00:01.000000",
) -> RemoteTrunk:
    return RemoteTrunk(trunk_id, name, trunk_type, created_at)


@pytest.mark.parametrize(
    ("remote", "known", "kind", "candidates"),
    [
        pytest.param([], set(), ABSENT, [], id="nothing-on-the-platform"),
        pytest.param([trunk("ST_new")], set(), ADOPT, ["ST_new"], id="one-new-trunk"),
        pytest.param(
            [trunk("ST_new", name="Other")], set(), ABSENT, [], id="another-name-does-not-count"
        ),
        pytest.param(
            # Not ours, and a name clash: the plan calls it a conflict without an
            # intent, so an intent does not create beside it either.
            [trunk("ST_new", trunk_type="twilio")],
            set(),
            FOREIGN,
            ["ST_new"],
            id="another-type-is-foreign",
        ),
        pytest.param([trunk("ST_known")], {"ST_known"}, ABSENT, [], id="known-ids-are-not-ours"),
        pytest.param(
            [trunk("ST_a"), trunk("ST_b")], set(), AMBIGUOUS, ["ST_a", "ST_b"], id="two-new"
        ),
        pytest.param(
            [trunk("ST_old", created_at="2026-11-26T09:00:00")],
            set(),
            FOREIGN,
            ["ST_old"],
            id="older-than-the-intent",
        ),
        pytest.param(
            [trunk("ST_skew", created_at="2026-11-27T09:58:30")],
            set(),
            ADOPT,
            ["ST_skew"],
            id="within-the-clock-skew-allowance",
        ),
        pytest.param(
            [trunk("ST_odd", created_at="yesterday")],
            set(),
            ADOPT,
            ["ST_odd"],
            id="an-unreadable-time-cannot-prove-it-older",
        ),
        pytest.param(
            [trunk("ST_old", created_at="2026-11-26T09:00:00"), trunk("ST_new")],
            set(),
            AMBIGUOUS,
            ["ST_old", "ST_new"],
            id="an-old-and-a-new-one",
        ),
    ],
)
def test_resolve_intent(
    remote: list[RemoteTrunk], known: set[str], kind: str, candidates: list[str]
) -> None:
    resolution = resolve_intent(NAME, intent(), remote, known)
    assert resolution.kind == kind
    assert [t.trunk_id for t in resolution.candidates] == candidates


def test_unknown_trunks_are_by_name_and_not_in_the_state() -> None:
    remote = [trunk("ST_a"), trunk("ST_b"), trunk("ST_c", name="Other")]
    assert unknown_trunks(NAME, remote, {"ST_a"}) == [trunk("ST_b")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15T10:00:00.000000", datetime(2024, 1, 15, 10, tzinfo=timezone.utc)),
        ("2024-01-15T10:00:00Z", datetime(2024, 1, 15, 10, tzinfo=timezone.utc)),
        ("2024-01-15T12:00:00+02:00", datetime(2024, 1, 15, 10, tzinfo=timezone.utc)),
    ],
)
def test_parse_time_reads_the_platform_times_as_utc(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_parse_time_refuses_what_is_not_a_time() -> None:
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_the_messages_give_an_import_command_a_shell_reads_back() -> None:
    name = 'It\'s "prod"; rm -rf /'
    found = (trunk("ST_a", name=name), trunk("ST_b", name=name))
    for message in (
        foreign_message(name, found),
        ambiguity_message(Resolution(name, AMBIGUOUS, found)),
    ):
        command = message.split("trunksync import ", 1)[1].split("  ")[0].split(" (")[0]
        assert shlex.split(command) == [name, "ST_a"]
