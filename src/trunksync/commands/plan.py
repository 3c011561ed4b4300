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
    missing_secrets_option,
    no_color_option,
    plaintext_option,
    plan_options,
    state_option,
    step_summary,
)
from trunksync.errors import TrunksyncError

if TYPE_CHECKING:
    from trunksync.plan import Plan
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
    help="Exit 0 when apply would change nothing (warnings may remain), 1 on error, "
    "2 when apply would change something.",
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
    help="Save the plan to this file, for `trunksync apply FILE` (needs TRUNKSYNC_API_KEY: "
    "the plan is signed with a key derived from it).",
)
@plan_options
@api_url_option
@plaintext_option
@missing_secrets_option
@no_color_option
@click.pass_context
def plan(
    ctx: click.Context,
    file: Path,
    state_spec: str,
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
    allow_missing_secrets: bool,
    no_color: bool,
) -> None:
    """Show what apply would change, comparing the file with the state.

    Offline unless --refresh is given: no API key is needed (--out needs one, to
    sign the saved plan). When GITHUB_STEP_SUMMARY is set, a markdown summary is
    appended to it.
    """
    from trunksync import api, planfile
    from trunksync.renderers import STEP_SUMMARY, TEXT, render_plan

    key = api_key() if out is not None or refresh else None
    if out is not None and not out.parent.is_dir():
        raise TrunksyncError(f"cannot save the plan to {out}: folder {out.parent} not found")
    desired = load_desired(
        file, allow_plaintext_secrets, allow_missing_secrets=allow_missing_secrets
    )
    backend = api.open_state(state_spec)
    existed = backend.exists()
    state = backend.load()
    options = api.make_options(desired, state, targets, replace, prune)
    remote = _remote_trunks(api_url, key) if refresh and key else None
    the_plan = api.make_plan(
        desired,
        state,
        remote=remote,
        options=options,
        max_deactivate_share=max_deactivate_share,
        force=force,
    )
    output_format = "json" if as_json else output_format
    if output_format == TEXT:
        echo_plan_text(render_plan(the_plan, TEXT), no_color)
    else:
        click.echo(render_plan(the_plan, output_format), nl=False)
    if out is not None and key:
        body = api.plan_document(
            the_plan,
            desired=desired,
            backend=backend,
            state_spec=state_spec,
            api_url=api_url,
            options=options,
            max_deactivate_share=max_deactivate_share,
            force=force,
            planned_on=state if existed else None,
        )
        planfile.save(out, body, key)
        if output_format == "text":
            click.echo(f"\nSaved the plan to {out}: apply it with `trunksync apply {out}`.")
    step_summary(lambda: render_plan(the_plan, STEP_SUMMARY))
    if detailed_exitcode and would_change(the_plan):
        ctx.exit(2)


def would_change(the_plan: Plan) -> bool:
    """Whether apply would change the platform or the state (an adopt writes the state).

    `changed`, orphan and conflict entries are warnings: apply leaves them alone."""

    return the_plan.would_change


def _remote_trunks(api_url: str, key: str) -> list[RemoteTrunk]:
    from trunksync import api

    with api.connect(api_url, key) as client:
        return client.list_trunks()
