"""`validate --json`, annotations where the reviewer looks, and one JSON document
on stdout for every command given --json, errors included (issue 10 item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner, Result

from helpers import SECRET_ENV, SENTINELS, TWO_TRUNKS, write
from trunksync.cli import cli, wants_json
from trunksync.problem_report import (
    ReportedProblem,
    github_annotation,
    gitlab_code_quality,
    problem_from_any,
    problem_from_text,
)

BAD = """\
version: 1
trunks:
  - trunk_name: Exotel India
    trunk_type: exotel
    trunk_config:
      exotel_number: "not a number"
  - trunk_name: Exotel India
    trunk_type: exotel
    trunk_config:
      exotel_number: "+918044319240"
"""


def run(*args: str, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={**SECRET_ENV, **env}, input=stdin)


def one_document(result: Result) -> Any:
    """stdout parses as exactly one JSON document (json.loads refuses trailing text)."""
    return json.loads(result.stdout)


def test_valid_file_as_json(isolated: Path) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    result = run("validate", "--json")
    assert result.exit_code == 0, result.output
    document = one_document(result)
    assert document == {
        "format_version": 1,
        "file": "trunks.yaml",
        "trunk_count": 2,
        "secrets_unchecked": False,
        "problems": [],
    }
    for sentinel in SENTINELS:
        assert sentinel not in result.output


def test_every_problem_has_file_line_column_and_message(isolated: Path) -> None:
    write(isolated / "trunks.yaml", BAD)
    result = run("validate", "--json")
    assert result.exit_code == 1
    document = one_document(result)
    assert document["format_version"] == 1
    assert document["error"]["exit_code"] == 1
    assert "\n" not in document["error"]["message"]
    problems = document["problems"]
    assert len(problems) >= 2
    for problem in problems:
        assert problem["file"] == "trunks.yaml"
        assert isinstance(problem["line"], int) and isinstance(problem["column"], int)
        assert problem["message"]
    assert {problem["line"] for problem in problems} >= {6, 7}
    assert result.stderr.startswith("Error: ")  # people still get the one-line error


def test_missing_file_is_a_problem_without_a_line(isolated: Path) -> None:
    result = run("validate", "--json", "-f", "nope.yaml")
    assert result.exit_code == 1
    [problem] = one_document(result)["problems"]
    assert problem["file"] == "nope.yaml"
    assert problem["line"] is None and problem["column"] is None
    assert "file not found" in problem["message"]


def test_plan_json_failing_on_the_file_prints_the_error_document(isolated: Path) -> None:
    write(isolated / "trunks.yaml", BAD)
    for args in (["plan", "--json"], ["plan", "--format", "json"], ["plan", "--format=json"]):
        result = run(*args)
        assert result.exit_code == 1
        assert one_document(result)["problems"][0]["line"] == 6


def test_a_usage_error_with_json_is_still_one_document(isolated: Path) -> None:
    result = run("plan", "--json", "--bogus")
    assert result.exit_code == 1
    document = one_document(result)
    assert "--bogus" in document["error"]["message"]
    assert document["problems"] == []


def test_without_json_stdout_holds_no_json(isolated: Path) -> None:
    write(isolated / "trunks.yaml", BAD)
    result = run("validate")
    assert result.exit_code == 1
    assert result.stdout == ""


def test_github_annotations_only_under_github_actions(isolated: Path) -> None:
    write(isolated / "trunks.yaml", BAD)
    plain = run("validate")
    assert "::error" not in plain.output
    annotated = run("validate", "--json", GITHUB_ACTIONS="true")
    assert annotated.exit_code == 1
    lines = [line for line in annotated.stderr.splitlines() if line.startswith("::error ")]
    assert len(lines) == len(one_document(annotated)["problems"])
    assert lines[0].startswith("::error file=trunks.yaml,line=6,col=")
    assert "::" in lines[0][len("::error ") :]


def test_gitlab_code_quality_report(isolated: Path) -> None:
    write(isolated / "trunks.yaml", BAD)
    result = run("validate", "--gitlab-report", "quality.json")
    assert result.exit_code == 1
    issues = json.loads(Path("quality.json").read_text())
    assert {issue["location"]["lines"]["begin"] for issue in issues} >= {6, 7}
    assert all(issue["location"]["path"] == "trunks.yaml" for issue in issues)
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    assert run("validate", "--gitlab-report", "quality.json").exit_code == 0
    assert json.loads(Path("quality.json").read_text()) == []  # a fixed file clears the widget


def test_annotation_escapes_properties_and_data() -> None:
    problem = ReportedProblem("dir,a:b%.yaml", 3, 4, "100% bad\r\nnext\x1b[31m")
    line = github_annotation(problem)
    assert line.startswith("::error file=dir%2Ca%3Ab%25.yaml,line=3,col=4,title=")
    message = line.split("::")[-1]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert message.startswith("100%25 bad")


def test_annotation_without_a_place_has_no_line() -> None:
    line = github_annotation(ReportedProblem("trunks.yaml", None, None, "file not found"))
    assert line == "::error file=trunks.yaml,title=trunksync validate::file not found"


class LoaderProblem(NamedTuple):  # the shape of config.Problem
    file: str
    line: int | None
    column: int | None
    message: str


def test_problems_read_from_strings_and_from_problem_values() -> None:
    assert problem_from_text("a.yaml:3:17: bad: value") == ReportedProblem(
        "a.yaml", 3, 17, "bad: value"
    )
    assert problem_from_text("a.yaml: cannot read") == ReportedProblem(
        "a.yaml", None, None, "cannot read"
    )
    assert problem_from_any(LoaderProblem("b.yaml", 2, None, "m")) == ReportedProblem(
        "b.yaml", 2, None, "m"
    )
    [issue] = gitlab_code_quality([ReportedProblem("b.yaml", None, None, "m")])
    assert issue["location"] == {"path": "b.yaml", "lines": {"begin": 1}}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "--json"], True),
        (["plan", "--format", "json"], True),
        (["plan", "--format=json"], True),
        (["plan", "--format", "markdown"], False),
        (["import", "--", "--json"], False),  # an operand, not an option
    ],
)
def test_wants_json(argv: list[str], expected: bool) -> None:
    assert wants_json(argv) is expected


def test_validate_reads_stdin(isolated: Path) -> None:
    result = run("validate", "-f", "-", "--json", stdin=TWO_TRUNKS)
    assert result.exit_code == 0, result.output
    assert one_document(result)["trunk_count"] == 2


def test_missing_secrets_are_allowed_only_when_asked(isolated: Path) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    without = CliRunner().invoke(cli, ["validate", "--json"], env={"TWILIO_AUTH_TOKEN": ""})
    assert without.exit_code == 1
    allowed = CliRunner().invoke(
        cli,
        ["validate", "--json", "--allow-missing-secrets"],
        env={"TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": ""},
    )
    assert allowed.exit_code == 0, allowed.output
    assert one_document(allowed)["secrets_unchecked"] is True


DOCS = Path(__file__).resolve().parent.parent / "docs" / "json-format.md"


def documented(section: str) -> Any:
    """The first ```json block after `section` in docs/json-format.md."""
    text = DOCS.read_text()
    start = text.index("```json\n", text.index(section)) + len("```json\n")
    return json.loads(text[start : text.index("```", start)])


def test_docs_show_the_real_validate_and_error_documents(isolated: Path) -> None:
    write(isolated / "trunks.yaml", TWO_TRUNKS)
    assert documented("## `trunksync validate --json`") == one_document(run("validate", "--json"))
    broken = TWO_TRUNKS.replace("+918044319240", '"abc"')
    write(isolated / "trunks.yaml", broken)
    assert documented("## Errors") == one_document(run("validate", "--json"))
