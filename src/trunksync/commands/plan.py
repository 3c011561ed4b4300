"""`trunksync plan`: show what apply would change (offline unless --refresh)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from trunksync.commands._common import (
    api_key,
    api_url_option,
    echo_plan_text,
    file_option,
    load_desired,
    make_options,
    no_color_option,
    plaintext_option,
    plan_options,
    state_option,
    step_summary,
)

if TYPE_CHECKING:
    from trunksync.reconcile import RemoteTrunk


@click.command()
@file_option
@state_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for people, json for machines, markdown for a pull-request comment.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
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
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan to this file, for `trunksync apply FILE`.",
)
@plan_options
@api_url_option
@plaintext_option
@no_color_option
@click.pass_context
def plan(
    ctx: click.Context,
    file: Path,
    state_path: Path,
    output_format: str,
    as_json: bool,
    detailed_exitcode: bool,
    refresh: bool,
    out: Path | None,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    prune: bool,
    max_deactivate_share: float,
    force: bool,
    api_url: str,
    allow_plaintext_secrets: bool,
    no_color: bool,
) -> None:
    """Show what apply would change, comparing the file with the state.

    Offline unless --refresh is given: no API key is needed. When
    GITHUB_STEP_SUMMARY is set, a markdown summary is appended to it.
    """
    from trunksync import planfile, render, render_markdown
    from trunksync.plan import check_safety, compute_plan
    from trunksync.state import StateStore

    desired = load_desired(file, allow_plaintext_secrets)
    store = StateStore(state_path)
    state = store.load()
    options = make_options(desired, state, targets, replace, prune)
    remote = _remote_trunks(api_url) if refresh else None
    the_plan = compute_plan(desired, state, remote, options)
    check_safety(the_plan, state, max_deactivate_share, force)
    output_format = "json" if as_json else output_format
    if output_format == "json":
        click.echo(render.dumps(render.plan_json(the_plan)))
    elif output_format == "markdown":
        click.echo(render_markdown.plan_markdown(the_plan), nl=False)
    else:
        echo_plan_text(render.plan_text(the_plan), no_color)
    if out is not None:
        from trunksync.client import check_api_url

        planfile.save(
            out,
            the_plan,
            desired=desired,
            state=state if store.exists() else None,
            state_path=state_path,
            api_url=check_api_url(api_url),
            options=options,
            safety={"max_deactivate_share": max_deactivate_share, "force": force},
        )
        if output_format == "text":
            click.echo(f"\nSaved the plan to {out}: apply it with `trunksync apply {out}`.")
    step_summary(lambda: render_markdown.plan_markdown(the_plan))
    if detailed_exitcode and the_plan.has_changes:
        ctx.exit(2)


def _remote_trunks(api_url: str) -> list[RemoteTrunk]:
    from trunksync.client import PlatformClient, check_api_url

    with PlatformClient(check_api_url(api_url), api_key()) as client:
        return client.list_trunks()
