"""Options and small helpers shared by the commands (click stays in commands/)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trunksync.defaults import DEFAULT_API_URL, DEFAULT_FILE, DEFAULT_STATE

F = TypeVar("F", bound=Callable[..., Any])


def file_option(function: F) -> F:
    return click.option(
        "-f",
        "--file",
        "file",
        default=DEFAULT_FILE,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The desired-state YAML file.",
    )(function)


def plaintext_option(function: F) -> F:
    return click.option(
        "--allow-plaintext-secrets",
        is_flag=True,
        help="Accept username/password written in the file instead of ${VAR}.",
    )(function)


def state_option(function: F) -> F:
    # A plain string: the backend factory parses it (a click.Path would mangle a URL).
    return click.option(
        "--state",
        "state_spec",
        envvar="TRUNKSYNC_STATE",
        default=DEFAULT_STATE,
        show_default=True,
        metavar="PATH|URL",
        help="The state: a file path, or a postgresql:// URL (env TRUNKSYNC_STATE).",
    )(function)


def missing_secrets_option(function: F) -> F:
    return click.option(
        "--allow-missing-secrets",
        is_flag=True,
        help="Plan without the secrets (forks, reviewers): an unset or empty secret variable "
        "becomes an unknown value; a plan saved this way cannot be applied.",
    )(function)


def is_explicit(ctx: click.Context, parameter: str) -> bool:
    """Whether the user gave `parameter` (command line or environment), not its default."""
    source = ctx.get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def api_url_option(function: F) -> F:
    return click.option(
        "--api-url",
        envvar="TRUNKSYNC_API_URL",
        default=DEFAULT_API_URL,
        show_default=True,
        help="Platform API base URL (env TRUNKSYNC_API_URL).",
    )(function)


def lock_timeout_option(function: F) -> F:
    return click.option(
        "--lock-timeout",
        default=0.0,
        show_default=True,
        type=click.FloatRange(0),
        help="Seconds to wait for another run's lock on the state.",
    )(function)


def timeout_option(function: F) -> F:
    return click.option(
        "--timeout",
        default=30.0,
        show_default=True,
        envvar="TRUNKSYNC_TIMEOUT",
        type=click.FloatRange(0.1),
        help="Seconds to wait for each API answer (env TRUNKSYNC_TIMEOUT).",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(
        function
    )


def api_key() -> str:
    from trunksync.api import env_api_key

    return env_api_key()


def load_desired(
    file: Path | str, allow_plaintext_secrets: bool, *, allow_missing_secrets: bool = False
) -> Any:
    from trunksync import api

    stdin = sys.stdin.buffer if str(file) == "-" else None
    return api.load_desired(
        file,
        allow_plaintext_secrets=allow_plaintext_secrets,
        allow_missing_secrets=allow_missing_secrets,
        stdin=stdin,
    )


def plan_options(function: F) -> F:
    """--target, --replace, --prune and the safety threshold, for plan and apply."""
    decorators = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="NAME",
            help="Only this entry (repeatable).",
        ),
        click.option(
            "--replace",
            "replace",
            multiple=True,
            metavar="NAME",
            help="Create a new trunk for this entry, record it, then deactivate the old "
            "one (repeatable). The trunk id changes.",
        ),
        click.option(
            "--prune",
            is_flag=True,
            help="Deactivate orphans: trunks in the state that are gone from the file.",
        ),
        click.option(
            "--max-deactivate-share",
            type=click.FloatRange(0, 1),
            default=0.3,
            show_default=True,
            help="Refuse to deactivate more than this share of the managed trunks "
            "(when there are 10 or more).",
        ),
        click.option("--force", is_flag=True, help="Deactivate beyond --max-deactivate-share."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def no_color_option(function: F) -> F:
    return click.option(
        "--no-color", is_flag=True, help="No colours (also: the NO_COLOR variable)."
    )(function)


def echo_plan_text(text: str, no_color: bool) -> None:
    from trunksync.terminal import colorize_plan_text, use_color

    if use_color(no_color, sys.stdout):
        text = colorize_plan_text(text)
    click.echo(text, nl=False)


def step_summary(render: Callable[[], str]) -> None:
    """Append `render()` to $GITHUB_STEP_SUMMARY; rendered only when that is set."""
    if not os.environ.get("GITHUB_STEP_SUMMARY"):
        return
    from trunksync.render_markdown import append_step_summary

    append_step_summary(render(), os.environ)
