"""`trunksync apply [PLANFILE]`: carry out the plan, recording each id as it arrives."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trunksync.commands._common import (
    api_key,
    api_url_option,
    echo_plan_text,
    file_option,
    json_option,
    load_desired,
    lock_timeout_option,
    make_options,
    no_color_option,
    plaintext_option,
    plan_options,
    state_option,
    step_summary,
    timeout_option,
)
from trunksync.defaults import DEFAULT_FILE, DEFAULT_PARALLELISM, DEFAULT_STATE
from trunksync.errors import ApplyFailed, Interrupted, TrunksyncError

if TYPE_CHECKING:
    from trunksync.apply import Settler
    from trunksync.client import PlatformClient
    from trunksync.journal import Journal
    from trunksync.plan import Plan
    from trunksync.planfile import SavedPlan
    from trunksync.reconcile import Resolution
    from trunksync.results import Result


@click.command()
@click.argument(
    "planfile",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="[PLANFILE]",
)
@file_option
@state_option
@api_url_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism",
    default=DEFAULT_PARALLELISM,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Creates in flight at once.",
)
@lock_timeout_option
@timeout_option
@json_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing had to change, 1 on error, 2 when changes were made.",
)
@plan_options
@plaintext_option
@no_color_option
def apply(planfile: Path | None, **flags: Any) -> None:
    """Create what is new (and, behind explicit flags, replace or prune).

    With PLANFILE (from `plan --out`), exactly that plan is applied, without a
    question, or nothing is: it is refused if the state, the file, the secrets
    or the platform changed since it was made.

    The platform's list is read first: creates whose outcome a previous run
    never learned are resolved (adopted, or created again if surely absent), and
    a trunk of the same name that the state does not know is never duplicated.
    Each new id is written to the state as soon as it arrives.
    """
    from trunksync import planfile as planfiles

    saved = planfiles.load(planfile) if planfile is not None else None
    if saved is not None:
        _take_saved_plan(saved, flags)
    if flags["as_json"] and not flags["auto_approve"] and saved is None:
        raise TrunksyncError("--json needs --auto-approve or a saved plan (there is no one to ask)")
    _apply(saved, **flags)


def _take_saved_plan(saved: SavedPlan, flags: dict[str, Any]) -> None:
    if flags["targets"] or flags["replace"] or flags["prune"] or flags["force"]:
        raise TrunksyncError(
            "a saved plan carries its own --target/--replace/--prune/--force: "
            "give them to `plan --out` instead"
        )
    if flags["file"] == Path(DEFAULT_FILE):
        flags["file"] = saved.desired_path
    if flags["state_path"] == Path(DEFAULT_STATE):
        flags["state_path"] = saved.state_path
    flags["max_deactivate_share"], flags["force"] = saved.max_share, saved.force
    flags["auto_approve"] = True  # the saved plan is what was approved


def _apply(
    saved: SavedPlan | None,
    *,
    file: Path,
    state_path: Path,
    api_url: str,
    auto_approve: bool,
    parallelism: int,
    lock_timeout: float,
    timeout: float,
    as_json: bool,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    prune: bool,
    max_deactivate_share: float,
    force: bool,
    allow_plaintext_secrets: bool,
    no_color: bool,
) -> None:
    from trunksync import planfile as planfiles
    from trunksync import render
    from trunksync.apply import Settler
    from trunksync.client import PlatformClient, check_api_url
    from trunksync.journal import Journal
    from trunksync.plan import check_safety, compute_plan
    from trunksync.state import StateStore

    desired = load_desired(file, allow_plaintext_secrets)
    key, url = api_key(), check_api_url(api_url)
    store = StateStore(state_path)
    with (
        store.locked(lock_timeout, "trunksync apply"),
        PlatformClient(url, key, timeout=timeout) as client,
    ):
        journal = Journal(store, store.load())
        if saved is not None:
            existing = journal.state if store.exists() else None
            planfiles.check_context(saved, desired_path=file, state=existing, api_url=url)
            options = saved.options
        else:
            options = make_options(desired, journal.state, targets, replace, prune)
        settler = Settler(client, journal, timeout)
        remote = client.list_trunks()
        _report_resolutions(settler.resolve_all(remote), as_json)
        the_plan = compute_plan(desired, journal.state, remote, options)
        check_safety(the_plan, journal.state, max_deactivate_share, force)
        if saved is not None:
            planfiles.check_changes(saved, the_plan)
            planfiles.check_secrets(saved, the_plan)
        if not as_json:
            echo_plan_text(render.plan_text(the_plan), no_color)
        if the_plan.creates() and not auto_approve:
            _confirm(len(the_plan.creates()))
        results, interrupted = _run(client, journal, settler, the_plan, parallelism, as_json)
    _finish(the_plan, results, interrupted, as_json, detailed_exitcode)


def _report_resolutions(resolutions: list[Resolution], as_json: bool) -> None:
    from trunksync.reconcile import ABSENT, ADOPT

    for resolution in resolutions:
        if as_json or resolution.kind not in (ADOPT, ABSENT):
            continue
        if resolution.kind == ADOPT:
            trunk_id = resolution.candidates[0].trunk_id
            click.echo(f'Adopted "{resolution.name}" {trunk_id}: an earlier create did succeed.')
        else:
            click.echo(
                f'"{resolution.name}": an earlier create did not happen; it can be sent again.'
            )


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(count: int) -> None:
    if not _stdin_is_terminal():
        raise TrunksyncError(
            "refusing to apply without confirmation: no terminal to ask on; "
            "review the plan and pass --auto-approve"
        )
    answer = click.prompt(
        f"\nCarry out {count} change(s)? Only 'yes' is accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        raise TrunksyncError("apply cancelled; nothing was changed")


def _run(
    client: PlatformClient,
    journal: Journal,
    settler: Settler,
    the_plan: Plan,
    parallelism: int,
    as_json: bool,
) -> tuple[list[Result], bool]:
    from trunksync import render
    from trunksync.apply import Applier
    from trunksync.results import CREATED, DEACTIVATED
    from trunksync.terminal import Progress

    changes = the_plan.creates()
    if not changes:
        return [], False
    applier = Applier(client, journal, parallelism, settler)
    # Everything loaded so far lives until the end: keep the collector from
    # rescanning it while hundreds of requests allocate around it.
    gc.freeze()
    progress = Progress(len(changes), sys.stdout, enabled=None if not as_json else False)
    if not as_json:
        click.echo("")

    def report(result: Result) -> None:
        if not as_json:
            progress.echo(render.result_line(result))
            progress.advance(result.status in (CREATED, DEACTIVATED))

    try:
        results = applier.run(changes, report)
    finally:
        progress.finish()
    return results, applier.interrupted


def _finish(
    the_plan: Plan,
    results: list[Result],
    interrupted: bool,
    as_json: bool,
    detailed_exitcode: bool,
) -> None:
    from trunksync import render
    from trunksync.plan import CONFLICT

    counts = render.results_summary(results)
    not_started = len(the_plan.creates()) - len(results)
    conflicts = the_plan.summary()[CONFLICT]
    if as_json:
        payload = {
            "format_version": render.JSON_FORMAT_VERSION,
            "plan": render.plan_json(the_plan),
            "results": [result._asdict() for result in results],
            "summary": {**counts, "not_started": not_started, "conflict": conflicts},
        }
        click.echo(render.dumps(payload))
    elif results:
        deactivated = f"{counts['deactivated']} deactivated, " if counts["deactivated"] else ""
        click.echo(
            f"\nApply finished: {counts['created']} created, {deactivated}{counts['failed']} "
            f"failed, {counts['unknown']} with unknown outcome, {not_started} not started."
        )
    else:
        click.echo("Nothing to create.")
    step_summary(lambda: _apply_markdown(the_plan, results))
    if interrupted:
        raise Interrupted(
            "interrupted: in-flight creates were recorded; run apply again to continue"
        )
    not_done = counts["failed"] + counts["unknown"] + conflicts
    if not_done:
        raise ApplyFailed(
            f"{not_done} change(s) not carried out (see above); "
            "every id that arrived is recorded in the state"
        )
    if detailed_exitcode and results:
        raise click.exceptions.Exit(2)


def _apply_markdown(the_plan: Plan, results: list[Result]) -> str:
    from trunksync.render_markdown import apply_markdown

    return apply_markdown(the_plan, results)
