"""`trunksync state list|show|rm|mv`: read the state file, and edit it by hand.

`rm` and `mv` change only the local state, never the platform: they hold the
state lock, keep the previous file as a backup, and refuse a name whose create
has an unknown outcome (an intent) until apply has resolved it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trunksync.commands._common import lock_timeout_option, state_option
from trunksync.errors import TrunksyncError, did_you_mean

if TYPE_CHECKING:
    from trunksync.state import State, StateStore, TrunkRecord

MAX_NAME_LENGTH = 100


@click.group()
def state() -> None:
    """Inspect the state file, or edit it without touching the platform."""


@state.command("list")
@state_option
def list_(state_path: Path) -> None:
    """List the trunk names in the state, one a line."""
    from trunksync.state import StateStore

    for name in sorted(StateStore(state_path).load().trunks):
        click.echo(name)


@state.command()
@click.argument("name")
@state_option
def show(name: str, state_path: Path) -> None:
    """Show what the state records for the trunk NAME (secrets as fingerprints only)."""
    from trunksync.state import StateStore

    record = _record(StateStore(state_path).load(), name, state_path)
    click.echo(f'trunk "{name}"')
    click.echo(f"  trunk_id   = {record.trunk_id}")
    click.echo(f"  trunk_type = {record.trunk_type}")
    click.echo(f"  created_at = {record.created_at}")
    for field, value in sorted(record.config.items()):
        click.echo(f"  {field} = {json.dumps(value, ensure_ascii=False)}")
    for field in sorted(record.secret_fingerprints):
        click.echo(f"  {field} = (sensitive; fingerprint recorded)")


@state.command()
@click.argument("name")
@state_option
@lock_timeout_option
def rm(name: str, state_path: Path, lock_timeout: float) -> None:
    """Forget the trunk NAME: remove it from the state, leaving it on the platform.

    The trunk stays active; its id is printed so that it can be recorded
    again later. The previous state is kept as a backup.
    """
    store = _existing_store(state_path)
    with store.locked(lock_timeout, "trunksync state rm"):
        current = store.load()
        _refuse_intent(current, name)
        record = _record(current, name, state_path)
        del current.trunks[name]
        store.save(current)
    click.echo(f'Removed "{name}" ({record.trunk_type}) {record.trunk_id} from {state_path}.')
    click.echo(f"The trunk was not deactivated: {record.trunk_id} still exists on the platform.")
    click.echo(f"The previous state is kept in {store.backup_path}.")


@state.command()
@click.argument("old")
@click.argument("new")
@state_option
@lock_timeout_option
def mv(old: str, new: str, state_path: Path, lock_timeout: float) -> None:
    """Rename the entry OLD to NEW in the state, keeping its trunk id.

    Use it after renaming a trunk_name in the file, so that apply does not
    create the trunk again. Nothing changes on the platform. The previous
    state is kept as a backup.
    """
    if old == new:
        raise TrunksyncError(f"OLD and NEW are the same name ({old!r}): nothing to move")
    if not 1 <= len(new) <= MAX_NAME_LENGTH:
        raise TrunksyncError(f"NEW must be 1 to {MAX_NAME_LENGTH} characters, like trunk_name")
    store = _existing_store(state_path)
    with store.locked(lock_timeout, "trunksync state mv"):
        current = store.load()
        _refuse_intent(current, old)
        _refuse_intent(current, new)
        record = _record(current, old, state_path)
        if new in current.trunks:
            raise TrunksyncError(
                f"{new!r} is already in {state_path} ({current.trunks[new].trunk_id}); "
                f"remove it first with 'trunksync state rm' if it should go; nothing was changed"
            )
        current.trunks[new] = current.trunks.pop(old)
        store.save(current)
    click.echo(f'Moved "{old}" to "{new}" ({record.trunk_id}) in {state_path}.')
    click.echo("Nothing changed on the platform; the trunk keeps its id and its name there.")
    click.echo(f"The previous state is kept in {store.backup_path}.")


def _existing_store(state_path: Path) -> StateStore:
    from trunksync.state import StateStore

    store = StateStore(state_path)
    if not store.exists():
        raise TrunksyncError(f"no state file at {state_path} (pass --state PATH to choose another)")
    return store


def _record(current: State, name: str, state_path: Path) -> TrunkRecord:
    """The record of `name`, or an error with a did-you-mean."""
    trunks = current.trunks
    if name not in trunks:
        hint = did_you_mean(name, trunks)
        raise TrunksyncError(f"no trunk named {name!r} in {state_path}{hint}")
    return trunks[name]


def _refuse_intent(current: State, name: str) -> None:
    intent = current.intents.get(name)
    if intent is not None:
        raise TrunksyncError(
            f"{name!r} has a create sent at {intent.started_at} whose outcome is unknown; "
            "run apply first to resolve it; nothing was changed"
        )
