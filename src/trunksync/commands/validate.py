"""`trunksync validate`: offline checks of the desired-state file.

Besides the one-line verdict, validate reports its problems where a reviewer
looks: `--json` (file, line, column, message of each), GitHub annotations on
the pull request's diff when run under GitHub Actions, and a GitLab Code
Quality report with `--gitlab-report FILE`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from trunksync.commands._common import file_option, plaintext_option
from trunksync.errors import ConfigError, TrunksyncError


@click.command()
@file_option
@plaintext_option
@click.option(
    "--allow-missing-secrets",
    is_flag=True,
    help="Accept an unset or empty ${VAR} in a secret field (username, password) as an "
    "unknown value, e.g. in a fork's pull request; unset variables elsewhere stay errors.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document: the file, its trunk count and every problem.",
)
@click.option(
    "--gitlab-report",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    metavar="FILE",
    help="Also write the problems as a GitLab Code Quality report (an empty list when valid).",
)
def validate(
    file: Path,
    allow_plaintext_secrets: bool,
    allow_missing_secrets: bool,
    as_json: bool,
    gitlab_report: Path | None,
) -> None:
    """Check the desired-state file offline: YAML, fields, types, duplicates, variables.

    `-f -` reads the file from stdin. Under GitHub Actions (GITHUB_ACTIONS=true)
    each problem is also printed on stderr as an `::error file=...,line=...::`
    annotation, which GitHub shows on the pull request's diff.
    """
    from trunksync.problem_report import (
        JSON_FORMAT_VERSION,
        github_annotation,
        gitlab_code_quality,
        problems_of,
        running_in_github_actions,
    )
    from trunksync.sanitize import printable

    try:
        desired = _load(file, allow_plaintext_secrets, allow_missing_secrets)
    except ConfigError as error:
        problems = problems_of(error)
        if running_in_github_actions(os.environ):
            # stderr, so stdout stays one JSON document; the runner reads workflow
            # commands from both streams (actions/runner, Handlers/ScriptHandler.cs).
            for problem in problems:
                click.echo(github_annotation(problem), err=True)
        if gitlab_report is not None:
            _write_report(gitlab_report, gitlab_code_quality(problems))
        raise  # the CLI prints it (and, with --json, the error document)
    if gitlab_report is not None:
        _write_report(gitlab_report, [])
    display = str(desired.path)
    count = len(desired.trunks)
    if as_json:
        document: dict[str, Any] = {
            "format_version": JSON_FORMAT_VERSION,
            "file": printable(display),
            "trunk_count": count,
            "secrets_unchecked": desired.secrets_unchecked,
            "problems": [],
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"{printable(display)}: valid, {count} trunk(s).")
    if desired.secrets_unchecked:
        click.echo("Some secrets were not set: their values could not be checked.")


def _load(file: Path, allow_plaintext_secrets: bool, allow_missing_secrets: bool) -> Any:
    from trunksync.config import load_desired

    return load_desired(
        file,
        os.environ,
        allow_plaintext_secrets,
        allow_missing_secrets=allow_missing_secrets,
        stdin=sys.stdin.buffer if str(file) == "-" else None,
    )


def _write_report(path: Path, issues: list[dict[str, Any]]) -> None:
    try:
        path.write_text(json.dumps(issues, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise TrunksyncError(f"cannot write {path}: {error.strerror}") from None
