"""`trunksync state list|show`: read the state file."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import click

from trunksync.commands._common import state_option
from trunksync.errors import TrunksyncError


@click.group()
def state() -> None:
    """Inspect the state file."""


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

    trunks = StateStore(state_path).load().trunks
    if name not in trunks:
        close = difflib.get_close_matches(name, list(trunks), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TrunksyncError(f"no trunk named {name!r} in {state_path}{hint}")
    record = trunks[name]
    click.echo(f'trunk "{name}"')
    click.echo(f"  trunk_id   = {record.trunk_id}")
    click.echo(f"  trunk_type = {record.trunk_type}")
    click.echo(f"  created_at = {record.created_at}")
    for field, value in sorted(record.config.items()):
        click.echo(f"  {field} = {json.dumps(value, ensure_ascii=False)}")
    for field in sorted(record.secret_fingerprints):
        click.echo(f"  {field} = (sensitive; fingerprint recorded)")
