"""`trunksync import NAME TRUNK_ID`: adopt an existing trunk for a file entry."""

from __future__ import annotations

from pathlib import Path

import click

from trunksync.commands._common import (
    api_key,
    api_url_option,
    file_option,
    load_desired,
    lock_timeout_option,
    plaintext_option,
    state_option,
)
from trunksync.errors import TrunksyncError


@click.command("import")
@click.argument("name")
@click.argument("trunk_id")
@file_option
@state_option
@api_url_option
@lock_timeout_option
@plaintext_option
def import_(
    name: str,
    trunk_id: str,
    file: Path,
    state_path: Path,
    api_url: str,
    lock_timeout: float,
    allow_plaintext_secrets: bool,
) -> None:
    """Record the existing trunk TRUNK_ID as the file's entry NAME.

    The id must be an active trunk on the platform with that name and type. Its
    configuration cannot be read back (the API never returns it), so the entry in
    the file is recorded as what was applied. Any unresolved create for NAME is
    closed.
    """
    from trunksync.apply import record_created
    from trunksync.client import PlatformClient, check_api_url
    from trunksync.state import StateStore

    desired = load_desired(file, allow_plaintext_secrets)
    entry = next((trunk for trunk in desired.trunks if trunk.name == name), None)
    if entry is None:
        raise TrunksyncError(f"{file} has no trunk named {name!r}: add the entry first")
    store = StateStore(state_path)
    with (
        store.locked(lock_timeout, "trunksync import"),
        PlatformClient(check_api_url(api_url), api_key()) as client,
    ):
        state = store.load()
        recorded = state.trunks.get(name)
        if recorded is not None and recorded.trunk_id != trunk_id:
            raise TrunksyncError(
                f"{name!r} is already recorded as {recorded.trunk_id}; "
                f"run 'trunksync state rm {name!r}' first to replace it"
            )
        owner = next((n for n, r in state.trunks.items() if r.trunk_id == trunk_id), None)
        if owner is not None and owner != name:
            raise TrunksyncError(f"{trunk_id} is already recorded for {owner!r}")
        remote = {trunk.trunk_id: trunk for trunk in client.list_trunks()}
        found = remote.get(trunk_id)
        if found is None:
            raise TrunksyncError(f"{trunk_id} is not an active trunk of this API key")
        if (found.trunk_name, found.trunk_type) != (name, entry.trunk_type):
            raise TrunksyncError(
                f"{trunk_id} is {found.trunk_type} trunk {found.trunk_name!r} on the platform, "
                f"not {entry.trunk_type} trunk {name!r}"
            )
        record_created(state, entry, trunk_id, found.created_at or None)
        store.save(state)
    click.echo(f'Imported "{name}" as {trunk_id}.')
