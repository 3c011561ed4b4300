"""`trunksync plan`: show what apply would change (offline, no API key needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from trunksync.commands._common import (
    api_key,
    api_url_option,
    file_option,
    json_option,
    load_desired,
    plaintext_option,
    state_option,
)

if TYPE_CHECKING:
    from trunksync.reconcile import RemoteTrunk


@click.command()
@file_option
@state_option
@json_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 1 on error, 2 when changes are present.",
)
@click.option(
    "--refresh",
    is_flag=True,
    help="Also compare with the platform's list (needs TRUNKSYNC_API_KEY): shows "
    "trunks deactivated outside trunksync, creates to adopt, and name conflicts.",
)
@api_url_option
@plaintext_option
@click.pass_context
def plan(
    ctx: click.Context,
    file: Path,
    state_path: Path,
    as_json: bool,
    detailed_exitcode: bool,
    refresh: bool,
    api_url: str,
    allow_plaintext_secrets: bool,
) -> None:
    """Show what apply would change, comparing the file with the state.

    Offline unless --refresh is given: no API key is needed.
    """
    from trunksync import render
    from trunksync.plan import compute_plan
    from trunksync.state import StateStore

    desired = load_desired(file, allow_plaintext_secrets)
    state = StateStore(state_path).load()
    remote = _remote_trunks(api_url) if refresh else None
    the_plan = compute_plan(desired, state, remote)
    if as_json:
        click.echo(render.dumps(render.plan_json(the_plan)))
    else:
        click.echo(render.plan_text(the_plan), nl=False)
    if detailed_exitcode and the_plan.has_changes:
        ctx.exit(2)


def _remote_trunks(api_url: str) -> list[RemoteTrunk]:
    from trunksync.client import PlatformClient, check_api_url

    with PlatformClient(check_api_url(api_url), api_key()) as client:
        return client.list_trunks()
