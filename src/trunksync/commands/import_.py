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
    state_spec: str,
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
    from trunksync import api
    from trunksync.sanitize import printable

    desired = load_desired(file, allow_plaintext_secrets)
    backend = api.open_state(state_spec)
    with api.connect(api_url, api_key()) as client:
        api.import_trunk(desired, backend, client, name, trunk_id, lock_timeout=lock_timeout)
    click.echo(f'Imported "{printable(name)}" as {trunk_id}.')
