"""Options and small helpers shared by the commands (click stays in commands/)."""

from __future__ import annotations

import os
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
    return click.option(
        "--state",
        "state_path",
        default=DEFAULT_STATE,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The state file.",
    )(function)


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
        type=click.FloatRange(0.1),
        help="Seconds to wait for each API answer.",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(
        function
    )


def api_key() -> str:
    from trunksync.errors import TrunksyncError

    key = os.environ.get("TRUNKSYNC_API_KEY", "")
    if not key:
        raise TrunksyncError("TRUNKSYNC_API_KEY is not set: export the platform API key first")
    return key


def load_desired(file: Path, allow_plaintext_secrets: bool) -> Any:
    from trunksync.config import load_desired as load

    return load(file, os.environ, allow_plaintext_secrets)
