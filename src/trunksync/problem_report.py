"""Validation problems as machines read them: JSON, GitHub annotations, GitLab Code Quality.

A ConfigError carries its problems either as `Problem(file, line, column, message)`
values (the config loader's type) or, from older loaders, as "FILE:LINE:COL: message"
strings; `problems_of` reads both into one shape so every report below has a
file, a line and a column (None when the loader could not place the problem).
No click here: the commands print what these functions return.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from trunksync.sanitize import printable

JSON_FORMAT_VERSION = 1


class ReportedProblem(NamedTuple):
    """One problem of the desired-state file; line and column are 1-based, None if unknown."""

    file: str
    line: int | None
    column: int | None
    message: str


_PLACED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<message>.*)$", re.S)
_FILE_ONLY = re.compile(r"^(?P<file>[^\n]+?): (?P<message>.*)$", re.S)


def problem_from_text(text: str) -> ReportedProblem:
    """Parse "FILE:LINE:COL: message" (or "FILE: message"); anything else is a bare message."""
    placed = _PLACED.match(text)
    if placed:
        return ReportedProblem(
            placed["file"], int(placed["line"]), int(placed["column"]), placed["message"]
        )
    file_only = _FILE_ONLY.match(text)
    if file_only:
        return ReportedProblem(file_only["file"], None, None, file_only["message"])
    return ReportedProblem("", None, None, text)


def problem_from_any(problem: object) -> ReportedProblem:
    """A Problem-like value (file, line, column, message attributes) or a string."""
    fields = ("file", "line", "column", "message")
    if all(hasattr(problem, name) for name in fields):
        line = getattr(problem, "line")  # noqa: B009 - duck-typed: the loader's Problem
        column = getattr(problem, "column")  # noqa: B009
        return ReportedProblem(
            str(getattr(problem, "file")),  # noqa: B009
            line if isinstance(line, int) else None,
            column if isinstance(column, int) else None,
            str(getattr(problem, "message")),  # noqa: B009
        )
    return problem_from_text(str(problem))


def problems_of(error: BaseException) -> list[ReportedProblem]:
    """The problems an error carries (ConfigError.problems), or none."""
    problems = getattr(error, "problems", None)
    if not isinstance(problems, list):
        return []
    return [problem_from_any(problem) for problem in problems]


def problem_json(problem: ReportedProblem) -> dict[str, Any]:
    return {
        "file": printable(problem.file),
        "line": problem.line,
        "column": problem.column,
        "message": printable(problem.message),
    }


def error_document(
    message: str, exit_code: int, problems: Iterable[ReportedProblem] = ()
) -> dict[str, Any]:
    """What a command given --json prints on stdout when it fails (docs/json-format.md)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        # One line: a multi-problem message is joined, each problem is listed below anyway.
        "error": {"message": printable("; ".join(message.splitlines())), "exit_code": exit_code},
        "problems": [problem_json(problem) for problem in problems],
    }


# GitHub's workflow-command escaping (actions/toolkit, core/src/command.ts): data
# escapes %, CR and LF; property values also escape ':' and ','.
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem: ReportedProblem, title: str = "trunksync validate") -> str:
    """`::error file=F,line=L,col=C,title=T::message`, which GitHub shows on the PR's diff."""
    properties = []
    if problem.file:
        properties.append(f"file={_escape_property(printable(problem.file))}")
    if problem.line is not None:
        properties.append(f"line={problem.line}")
    if problem.column is not None:
        properties.append(f"col={problem.column}")
    properties.append(f"title={_escape_property(title)}")
    return f"::error {','.join(properties)}::{_escape_data(printable(problem.message))}"


def running_in_github_actions(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def gitlab_code_quality(problems: Iterable[ReportedProblem]) -> list[dict[str, Any]]:
    """A GitLab Code Quality report: the merge request widget shows each problem at its line."""
    issues = []
    for problem in problems:
        message = printable(problem.message)
        path = printable(problem.file)
        line = problem.line if problem.line is not None else 1
        fingerprint = hashlib.sha256(f"{path}\0{line}\0{message}".encode()).hexdigest()
        issues.append(
            {
                "description": message,
                "check_name": "trunksync-validate",
                "fingerprint": fingerprint,
                "severity": "major",
                "location": {"path": path, "lines": {"begin": line}},
            }
        )
    return issues
