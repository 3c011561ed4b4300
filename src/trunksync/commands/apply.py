"""`trunksync apply`: create what is new, recording each id as soon as it arrives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trunksync.commands._common import (
    api_key,
    api_url_option,
    file_option,
    json_option,
    load_desired,
    lock_timeout_option,
    plaintext_option,
    state_option,
    timeout_option,
)
from trunksync.defaults import DEFAULT_PARALLELISM
from trunksync.errors import ApplyFailed, Interrupted, TrunksyncError

if TYPE_CHECKING:
    from trunksync.apply import Result, Settler
    from trunksync.client import PlatformClient
    from trunksync.journal import Journal
    from trunksync.plan import Plan
    from trunksync.reconcile import Resolution


@click.command()
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
@plaintext_option
def apply(
    file: Path,
    state_path: Path,
    api_url: str,
    auto_approve: bool,
    parallelism: int,
    lock_timeout: float,
    timeout: float,
    as_json: bool,
    allow_plaintext_secrets: bool,
) -> None:
    """Create the trunks that are in the file but not in the state.

    The platform's list is read first: creates whose outcome a previous run
    never learned are resolved (adopted, or created again if surely absent), and
    a trunk of the same name that the state does not know is never duplicated.
    Changed and orphaned entries are shown and left alone: the API cannot
    update a trunk. Each new id is written to the state as soon as it arrives.
    """
    from trunksync.apply import Settler
    from trunksync.client import PlatformClient, check_api_url
    from trunksync.journal import Journal
    from trunksync.plan import compute_plan
    from trunksync.state import StateStore

    if as_json and not auto_approve:
        raise TrunksyncError("--json needs --auto-approve (there is no one to ask)")
    desired = load_desired(file, allow_plaintext_secrets)
    key, url = api_key(), check_api_url(api_url)
    store = StateStore(state_path)
    with (
        store.locked(lock_timeout, "trunksync apply"),
        PlatformClient(url, key, max_connections=parallelism, timeout=timeout) as client,
    ):
        journal = Journal(store, store.load())
        settler = Settler(client, journal, timeout)
        remote = client.list_trunks()
        _report_resolutions(settler.resolve_all(remote), as_json)
        the_plan = compute_plan(desired, journal.state, remote)
        _show_plan(the_plan, as_json)
        creates = the_plan.creates()
        if creates and not auto_approve:
            _confirm(len(creates))
        results, interrupted = _run(client, journal, settler, the_plan, parallelism, as_json)
    _finish(the_plan, results, interrupted, as_json)


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


def _show_plan(the_plan: Plan, as_json: bool) -> None:
    from trunksync import render

    if not as_json:
        click.echo(render.plan_text(the_plan), nl=False)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(count: int) -> None:
    if not _stdin_is_terminal():
        raise TrunksyncError(
            "refusing to apply without confirmation: no terminal to ask on; "
            "review the plan and pass --auto-approve"
        )
    answer = click.prompt(
        f"\nCreate {count} trunk(s)? Only 'yes' is accepted", default="", show_default=False
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

    creates = the_plan.creates()
    if not creates:
        return [], False
    applier = Applier(client, journal, parallelism, settler)
    if not as_json:
        click.echo("")

    def report(result: Result) -> None:
        if not as_json:
            click.echo(render.result_line(result))

    results = applier.run(creates, report)
    return results, applier.interrupted


def _finish(the_plan: Plan, results: list[Result], interrupted: bool, as_json: bool) -> None:
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
        click.echo(
            f"\nApply finished: {counts['created']} created, {counts['failed']} failed, "
            f"{counts['unknown']} with unknown outcome, {not_started} not started."
        )
    else:
        click.echo("Nothing to create.")
    if interrupted:
        raise Interrupted(
            "interrupted: in-flight creates were recorded; run apply again to continue"
        )
    not_created = counts["failed"] + counts["unknown"] + conflicts
    if not_created:
        raise ApplyFailed(
            f"{not_created} trunk(s) not created (see above); "
            "every id that arrived is recorded in the state"
        )
