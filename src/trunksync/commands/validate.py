"""`trunksync validate`: offline checks of the desired-state file."""

from __future__ import annotations

from pathlib import Path

import click

from trunksync.commands._common import file_option, load_desired, plaintext_option


@click.command()
@file_option
@plaintext_option
def validate(file: Path, allow_plaintext_secrets: bool) -> None:
    """Check the desired-state file offline: YAML, fields, types, duplicates, variables."""
    desired = load_desired(file, allow_plaintext_secrets)
    click.echo(f"{file}: valid, {len(desired.trunks)} trunk(s).")
