"""`trunksync state list|show|rm|mv|history|migrate`: read the state, edit it by hand, move it.

`rm` and `mv` change only the local state, never the platform: they hold the
state lock, keep the previous file as a backup, and refuse a name whose create
has an unknown outcome (an intent) until apply has resolved it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trunksync.commands._common import (
    json_option,
    lock_timeout_option,
    state_option,
)
from trunksync.errors import TrunksyncError, did_you_mean

if TYPE_CHECKING:
    from trunksync.backends.base import StateBackend
    from trunksync.state import State, TrunkRecord

MAX_NAME_LENGTH = 100


@click.group()
def state() -> None:
    """Inspect the state file, or edit it without touching the platform."""


@state.command("list")
@state_option
def list_(state_spec: str) -> None:
    """List the trunk names in the state, one a line."""
    from trunksync import api
    from trunksync.sanitize import printable

    for name in sorted(api.open_state(state_spec).load().trunks):
        click.echo(printable(name))


@state.command()
@click.argument("name")
@state_option
def show(name: str, state_spec: str) -> None:
    """Show what the state records for the trunk NAME (secrets as fingerprints only)."""
    from trunksync import api
    from trunksync.sanitize import printable

    record = _record(api.open_state(state_spec).load(), name, state_spec)
    click.echo(f'trunk "{printable(name)}"')
    click.echo(f"  trunk_id   = {printable(record.trunk_id)}")
    click.echo(f"  trunk_type = {record.trunk_type}")
    click.echo(f"  created_at = {printable(record.created_at)}")
    for field, value in sorted(record.config.items()):
        click.echo(f"  {field} = {printable(json.dumps(value, ensure_ascii=False))}")
    for field in sorted(record.secret_fingerprints):
        click.echo(f"  {field} = (sensitive; fingerprint recorded)")


@state.command()
@click.argument("name")
@state_option
@lock_timeout_option
def rm(name: str, state_spec: str, lock_timeout: float) -> None:
    """Forget the trunk NAME: remove it from the state, leaving it on the platform.

    The trunk stays active; its id is printed so that it can be recorded
    again later. The previous state is kept as a backup.
    """
    from trunksync.changes import ForgetTrunk
    from trunksync.sanitize import printable

    backend = _existing(state_spec)
    with backend.lock(timeout=lock_timeout, command="trunksync state rm") as locked:
        _refuse_intent(locked.state, name)
        record = _record(locked.state, name, state_spec)
        locked.commit([ForgetTrunk(name, record.trunk_id)])
    click.echo(
        f'Removed "{printable(name)}" ({record.trunk_type}) {record.trunk_id} '
        f"from {_shown(state_spec)}."
    )
    click.echo(f"The trunk was not deactivated: {record.trunk_id} still exists on the platform.")
    _backup_line(backend, state_spec)


@state.command()
@click.argument("old")
@click.argument("new")
@state_option
@lock_timeout_option
def mv(old: str, new: str, state_spec: str, lock_timeout: float) -> None:
    """Rename the entry OLD to NEW in the state, keeping its trunk id.

    Use it after renaming a trunk_name in the file, so that apply does not
    create the trunk again. Nothing changes on the platform. The previous
    state is kept as a backup.
    """
    from trunksync.changes import ForgetTrunk, RecordId
    from trunksync.sanitize import has_unsafe_chars, printable

    if old == new:
        raise TrunksyncError(f"OLD and NEW are the same name ({printable(old)!r}): nothing to move")
    if not 1 <= len(new) <= MAX_NAME_LENGTH or has_unsafe_chars(new):
        raise TrunksyncError(
            f"NEW must be 1 to {MAX_NAME_LENGTH} characters without control characters, "
            "like trunk_name"
        )
    backend = _existing(state_spec)
    with backend.lock(timeout=lock_timeout, command="trunksync state mv") as locked:
        current = locked.state
        _refuse_intent(current, old)
        _refuse_intent(current, new)
        record = _record(current, old, state_spec)
        if new in current.trunks:
            raise TrunksyncError(
                f"{printable(new)!r} is already in {_shown(state_spec)} "
                f"({current.trunks[new].trunk_id}); "
                f"remove it first with 'trunksync state rm' if it should go; nothing was changed"
            )
        locked.commit([ForgetTrunk(old, record.trunk_id), RecordId(new, record)])
    click.echo(
        f'Moved "{printable(old)}" to "{printable(new)}" ({record.trunk_id}) '
        f"in {_shown(state_spec)}."
    )
    click.echo("Nothing changed on the platform; the trunk keeps its id and its name there.")
    _backup_line(backend, state_spec)


@state.command()
@state_option
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1), help="Entries to show."
)
@lock_timeout_option
@json_option
def history(state_spec: str, limit: int, lock_timeout: float, as_json: bool) -> None:
    """Show the latest durable changes of the state: serial, time, actor, what changed.

    Read without the state lock (no write access needed; --lock-timeout is not
    used): each batch is recorded with its entry, so a run in progress never shows
    half a batch. A state moved by `state migrate` keeps its history readable."""
    from trunksync import api, render
    from trunksync.sanitize import printable

    backend = api.open_state(state_spec)
    entries = api.state_history(backend, limit, lock_timeout=lock_timeout)
    if as_json:
        click.echo(render.dumps([entry._asdict() for entry in entries]))
        return
    if not entries:
        click.echo(f"No history recorded for {printable(str(backend.identity()))}.")
        return
    for entry in entries:
        click.echo(
            f"{entry.serial:>6}  {printable(entry.time)}  {printable(entry.actor)}  "
            f"{printable(entry.summary)}"
        )


@state.command()
@click.option(
    "--to",
    "target_spec",
    required=True,
    metavar="PATH|URL",
    help="The empty state to move to: a file path, or a postgresql:// URL.",
)
@state_option
@lock_timeout_option
def migrate(target_spec: str, state_spec: str, lock_timeout: float) -> None:
    """Move the state to another backend, keeping its lineage.

    The target must be empty. The source is marked as moved first, so every
    later command on it is refused, then the target is seeded: two live copies
    never share a lineage. If it is interrupted in between, run it again to
    finish.
    """
    from trunksync import api
    from trunksync.sanitize import printable

    source, target = api.open_state(state_spec), api.open_state(target_spec)
    moved = api.migrate_state(source, target, lock_timeout=lock_timeout)
    click.echo(
        f"Moved {moved} trunk(s) from {printable(str(source.identity()))} "
        f"to {printable(str(target.identity()))}."
    )
    click.echo(f"Use --state {printable(api.spec_without_password(target_spec))} from now on.")


def _existing(state_spec: str) -> StateBackend:
    from trunksync import api

    backend = api.open_state(state_spec)
    if not backend.exists():
        raise TrunksyncError(f"no state at {_shown(state_spec)} (pass --state to choose another)")
    return backend


def _shown(state_spec: str) -> str:
    """The spec as it may be printed: a URL's password (user:pw@ or ?password=) never is."""
    from trunksync import api
    from trunksync.sanitize import printable

    return printable(api.spec_without_password(state_spec))


def _backup_line(backend: StateBackend, state_spec: str) -> None:
    """Say where the local backend kept the previous state, when it did."""
    if backend.identity().kind != "local":
        return
    backup = Path(state_spec).with_name(Path(state_spec).name + ".backup")
    if backup.exists():
        click.echo(f"The previous state is kept in {backup}.")


def _record(current: State, name: str, state_spec: str) -> TrunkRecord:
    """The record of `name`, or an error with a did-you-mean."""
    from trunksync.sanitize import printable

    trunks = current.trunks
    if name not in trunks:
        hint = did_you_mean(name, trunks)
        raise TrunksyncError(
            f"no trunk named {printable(name)!r} in {_shown(state_spec)}{printable(hint)}"
        )
    return trunks[name]


def _refuse_intent(current: State, name: str) -> None:
    from trunksync.sanitize import printable

    intent = current.intents.get(name)
    if intent is not None:
        raise TrunksyncError(
            f"{printable(name)!r} has a create sent at {printable(intent.started_at)} whose "
            "outcome is unknown; run apply first to resolve it; nothing was changed"
        )
