"""`trunksync apply [PLANFILE]`: carry out the plan, recording each id as it arrives."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trunksync.collector import CollectorPause
from trunksync.commands._common import (
    api_key,
    api_url_option,
    echo_plan_text,
    file_option,
    is_explicit,
    json_option,
    load_desired,
    lock_timeout_option,
    no_color_option,
    plaintext_option,
    plan_options,
    state_option,
    step_summary,
    timeout_option,
)
from trunksync.defaults import DEFAULT_PARALLELISM
from trunksync.errors import ApplyFailed, Interrupted, TrunksyncError

if TYPE_CHECKING:
    from trunksync.api import ApplyReport
    from trunksync.plan import Plan
    from trunksync.planfile import SavedPlan
    from trunksync.reconcile import Resolution
    from trunksync.results import Result
    from trunksync.terminal import Progress


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
    help="Exit 0 when nothing had to change, 1 on any failure, 2 when changes were made.",
)
@plan_options
@plaintext_option
@no_color_option
@click.pass_context
def apply(ctx: click.Context, /, planfile: Path | None, **flags: Any) -> None:
    """Create what is new (and, behind explicit flags, replace or prune).

    With PLANFILE (from `plan --out`), exactly that plan is applied, without a
    question, or nothing is: it is refused if it cannot be verified with
    TRUNKSYNC_API_KEY, or if the state, the file, the secrets or the platform
    changed since it was made.

    The platform's list is read first: creates whose outcome a previous run
    never learned are resolved (adopted, or created again if surely absent), and
    a trunk of the same name that the state does not know is never duplicated.
    Each new id is written to the state as soon as it arrives. Ctrl-C or SIGTERM
    starts nothing new, records what is in flight, and exits 130 or 143.
    """
    from trunksync import api

    saved = api.load_plan(planfile, api_key()) if planfile is not None else None
    if saved is not None:
        _take_saved_plan(ctx, saved, flags)
    if flags["as_json"] and not flags["auto_approve"]:
        raise TrunksyncError("--json needs --auto-approve or a saved plan (there is no one to ask)")
    if str(flags["file"]) == "-" and not flags["auto_approve"]:
        raise TrunksyncError(
            "-f - reads the desired state from stdin, which then cannot answer the prompt: "
            "pass --auto-approve, or apply a saved plan"
        )
    # What is loaded before the creates (the file, the state, the platform's list)
    # lives until the end: no collection while it is built, frozen when creates start.
    with CollectorPause() as collector:
        _apply(saved, collector=collector, **flags)


def _take_saved_plan(ctx: click.Context, saved: SavedPlan, flags: dict[str, Any]) -> None:
    """Take the file, the state and the options from the plan; refuse explicit disagreement."""
    if flags["targets"] or flags["replace"] or flags["prune"] or flags["force"]:
        raise TrunksyncError(
            "a saved plan carries its own --target/--replace/--prune/--force: "
            "give them to `plan --out` instead"
        )
    if is_explicit(ctx, "max_deactivate_share"):
        raise TrunksyncError(
            "a saved plan carries its own --max-deactivate-share: give it to `plan --out` instead"
        )
    if not is_explicit(ctx, "file"):
        flags["file"] = Path(saved.desired_path)
    elif not _same_file(str(flags["file"]), saved.desired_path):
        raise TrunksyncError(
            f"-f {flags['file']} differs from the file {saved.path} was made from "
            f"({saved.desired_path}); drop -f, or make the plan again"
        )
    if not is_explicit(ctx, "state_spec"):
        flags["state_spec"] = saved.state_spec
    # An explicit --state is checked against the plan's backend identity by the API.
    flags["auto_approve"] = True  # the saved plan is what was approved


def _same_file(given: str, recorded: str) -> bool:
    if "-" in (given, recorded):
        return given == recorded
    return Path(given).resolve() == Path(recorded).resolve()


def _apply(
    saved: SavedPlan | None,
    *,
    file: Path,
    state_spec: str,
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
    collector: CollectorPause,
) -> None:
    from trunksync import api
    from trunksync.interrupts import SignalCancel

    desired = load_desired(file, allow_plaintext_secrets)
    backend = api.open_state(state_spec)
    printer = _Printer(as_json, no_color, auto_approve, collector)
    stop = SignalCancel()
    with stop.installed():
        try:
            with api.connect(
                api_url,
                api_key(),
                timeout=timeout,
                cancel=stop.cancel,
                abort=stop.abort,
                secrets=_secrets(desired),
            ) as client:
                report = api.apply_plan(
                    desired,
                    backend,
                    client,
                    targets=targets,
                    replace=replace,
                    prune=prune,
                    max_deactivate_share=max_deactivate_share,
                    force=force,
                    saved=saved,
                    parallelism=parallelism,
                    timeout=timeout,
                    lock_timeout=lock_timeout,
                    cancel=stop.cancel,
                    approve=printer.approve,
                    on_resolution=printer.resolution,
                    on_result=printer.result,
                    on_notice=printer.notice,
                )
        except KeyboardInterrupt:
            raise _interrupted(stop, "nothing in flight was lost") from None
        finally:
            printer.finish()
    _finish(report, as_json)
    if report.interrupted:
        raise _interrupted(stop, "in-flight creates were recorded; run apply again to continue")
    if report.problems:
        raise ApplyFailed(
            f"{report.problems} change(s) not carried out (see above); "
            "every id that arrived is recorded in the state"
        )
    if detailed_exitcode and report.changed:
        raise click.exceptions.Exit(2)


def _interrupted(stop: Any, what: str) -> Interrupted:
    label = "" if stop.signum is None else f" ({stop.name})"
    error = Interrupted(f"interrupted: {what}{label}")
    error.exit_code = stop.exit_code
    return error


def _secrets(desired: Any) -> list[str]:
    return list(desired.secret_values())


class _Printer:
    """What apply shows while it runs: the plan, the question, progress, notices."""

    def __init__(
        self, as_json: bool, no_color: bool, auto_approve: bool, collector: CollectorPause
    ) -> None:
        self._as_json = as_json
        self._no_color = no_color
        self._auto_approve = auto_approve
        self._collector = collector
        self._progress: Progress | None = None

    def approve(self, the_plan: Plan) -> bool:
        from trunksync import render

        if not self._as_json:
            echo_plan_text(render.plan_text(the_plan), self._no_color)
        count = len(the_plan.creates())
        if count and not self._auto_approve:
            _confirm(count)
        if count:
            self._start(count)
        return True

    def _start(self, count: int) -> None:
        from trunksync.terminal import Progress

        self._collector.resume()
        self._progress = Progress(count, sys.stdout, enabled=None if not self._as_json else False)
        if not self._as_json:
            click.echo("")

    def resolution(self, resolution: Resolution) -> None:
        from trunksync.reconcile import ABSENT, ADOPT
        from trunksync.sanitize import printable

        if self._as_json or resolution.kind not in (ADOPT, ABSENT):
            return
        name = printable(resolution.name)
        if resolution.kind == ADOPT:
            trunk_id = resolution.candidates[0].trunk_id
            click.echo(f'Adopted "{name}" {trunk_id}: an earlier create did succeed.')
        else:
            click.echo(f'"{name}": an earlier create did not happen; it can be sent again.')

    def result(self, result: Result) -> None:
        from trunksync import render
        from trunksync.results import CREATED, DEACTIVATED

        if self._as_json or self._progress is None:
            return
        self._progress.echo(render.result_line(result))
        self._progress.advance(result.status in (CREATED, DEACTIVATED))

    def notice(self, message: str) -> None:
        click.echo(f"Warning: {message}", err=True)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.finish()


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


def _finish(report: ApplyReport, as_json: bool) -> None:
    from trunksync.renderers import JSON, STEP_SUMMARY, TEXT, render_apply

    text = render_apply(report.plan, report.results, JSON if as_json else TEXT)
    click.echo(text, nl=False)
    step_summary(lambda: render_apply(report.plan, report.results, STEP_SUMMARY))
