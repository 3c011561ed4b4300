"""`trunksync plan`: show what apply would change (offline, no API key needed)."""

from __future__ import annotations

from pathlib import Path

import click

from trunksync.commands._common import (
    file_option,
    json_option,
    load_desired,
    plaintext_option,
    state_option,
)


@click.command()
@file_option
@state_option
@json_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 1 on error, 2 when changes are present.",
)
@plaintext_option
@click.pass_context
def plan(
    ctx: click.Context,
    file: Path,
    state_path: Path,
    as_json: bool,
    detailed_exitcode: bool,
    allow_plaintext_secrets: bool,
) -> None:
    """Show what apply would change, comparing the file with the state."""
    from trunksync import render
    from trunksync.plan import compute_plan
    from trunksync.state import StateStore

    desired = load_desired(file, allow_plaintext_secrets)
    the_plan = compute_plan(desired, StateStore(state_path).load())
    if as_json:
        click.echo(render.dumps(render.plan_json(the_plan)))
    else:
        click.echo(render.plan_text(the_plan), nl=False)
    if detailed_exitcode and the_plan.has_changes:
        ctx.exit(2)
