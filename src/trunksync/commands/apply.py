"""`trunksync apply`: create what is new, recording each id as soon as it arrives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from trunksync.defaults import DEFAULT_PARALLELISM
from trunksync.errors import ApplyFailed, Interrupted, TrunksyncError

if TYPE_CHECKING:
    from trunksync.apply import Result
    from trunksync.plan import Plan


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
@click.option(
    "--lock-timeout",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for another run's lock on the state.",
)
@json_option
@plaintext_option
def apply(
    file: Path,
    state_path: Path,
    api_url: str,
    auto_approve: bool,
    parallelism: int,
    lock_timeout: float,
    as_json: bool,
    allow_plaintext_secrets: bool,
) -> None:
    """Create the trunks that are in the file but not in the state.

    Changed and orphaned entries are shown and left alone: the API cannot
    update a trunk. Each new trunk id is written to the state as soon as it
    arrives, so a run that fails half-way keeps every id it received.
    """
    from trunksync.client import PlatformClient, check_api_url
    from trunksync.plan import compute_plan
    from trunksync.state import StateStore

    if as_json and not auto_approve:
        raise TrunksyncError("--json needs --auto-approve (there is no one to ask)")
    desired = load_desired(file, allow_plaintext_secrets)
    key, url = api_key(), check_api_url(api_url)
    store = StateStore(state_path)
    with store.locked(lock_timeout, "trunksync apply"):
        state = store.load()
        the_plan = compute_plan(desired, state)
        _show_plan(the_plan, as_json)
        creates = the_plan.creates()
        if creates and not auto_approve:
            _confirm(len(creates))
        with PlatformClient(url, key, max_connections=parallelism) as client:
            results, interrupted = _run(client, store, state, the_plan, parallelism, as_json)
    _finish(the_plan, results, interrupted, as_json)


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
    client: Any, store: Any, state: Any, the_plan: Plan, parallelism: int, as_json: bool
) -> tuple[list[Result], bool]:
    from trunksync import render
    from trunksync.apply import Applier
    from trunksync.journal import Journal

    creates = the_plan.creates()
    if not creates:
        return [], False
    applier = Applier(client, Journal(store, state), parallelism)
    if not as_json:
        click.echo("")

    def report(result: Result) -> None:
        if not as_json:
            click.echo(render.result_line(result))

    results = applier.run(creates, report)
    return results, applier.interrupted


def _finish(the_plan: Plan, results: list[Result], interrupted: bool, as_json: bool) -> None:
    from trunksync import render

    counts = render.results_summary(results)
    not_started = len(the_plan.creates()) - len(results)
    if as_json:
        payload = {
            "format_version": render.JSON_FORMAT_VERSION,
            "plan": render.plan_json(the_plan),
            "results": [result._asdict() for result in results],
            "summary": {**counts, "not_started": not_started},
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
    if counts["failed"] or counts["unknown"]:
        raise ApplyFailed(
            f"{counts['failed'] + counts['unknown']} trunk(s) not created; "
            "the ids that arrived are recorded in the state"
        )
