"""Colour and progress only on a terminal, with fake streams."""

from __future__ import annotations

import io

import click
import pytest

from trunksync.terminal import Progress, colorize_plan_text, is_terminal, use_color


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class ClosedTerminal(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


def test_color_only_on_a_terminal() -> None:
    assert use_color(False, FakeTerminal(), {}) is True
    assert use_color(False, io.StringIO(), {}) is False
    assert use_color(False, object(), {}) is False
    assert use_color(False, ClosedTerminal(), {}) is False


@pytest.mark.parametrize(
    ("flag", "environ"),
    [(True, {}), (False, {"NO_COLOR": "1"}), (False, {"TERM": "dumb"})],
)
def test_no_color_flag_env_and_dumb_terminal_win(flag: bool, environ: dict[str, str]) -> None:
    assert use_color(flag, FakeTerminal(), environ) is False


def test_empty_no_color_is_ignored_as_the_convention_says() -> None:
    assert use_color(False, FakeTerminal(), {"NO_COLOR": ""}) is True


def test_use_color_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert use_color(False, FakeTerminal()) is True
    monkeypatch.setenv("NO_COLOR", "yes")
    assert use_color(False, FakeTerminal()) is False


def test_colorize_by_leading_symbol() -> None:
    text = (
        '  + create "A" (exotel)\n'
        '      exotel_number = "+918044319240"\n'
        '  ~ changed "B" (exotel) ST_b\n'
        "    ~ sip_port : 5060 -> 5070\n"
        '  ! orphan "C" (twilio) ST_c\n'
        '  = noop "D" (exotel) ST_d\n'
        '  x failed "E": 400\n'
        '  ? unknown "F": timeout\n'
        "Plan: 1 to create\n"
    )
    assert colorize_plan_text(text) == (
        click.style('  + create "A" (exotel)', fg="green")
        + "\n"
        + '      exotel_number = "+918044319240"\n'
        + click.style('  ~ changed "B" (exotel) ST_b', fg="yellow")
        + "\n"
        + click.style("    ~ sip_port : 5060 -> 5070", fg="yellow")
        + "\n"
        + click.style('  ! orphan "C" (twilio) ST_c', fg="red")
        + "\n"
        + click.style('  = noop "D" (exotel) ST_d', dim=True)
        + "\n"
        + click.style('  x failed "E": 400', fg="red")
        + "\n"
        + click.style('  ? unknown "F": timeout', fg="yellow")
        + "\n"
        + "Plan: 1 to create\n"
    )
    assert click.unstyle(colorize_plan_text(text)) == text


def test_colorize_keeps_a_missing_final_newline() -> None:
    assert colorize_plan_text("  + a") == click.style("  + a", fg="green")
    assert colorize_plan_text("") == ""


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    stream = FakeTerminal()
    progress = Progress(3, stream)
    assert progress.enabled
    progress.echo("  + created A")  # nothing drawn yet: a plain line
    progress.advance()
    progress.echo("  x failed B")
    progress.advance(created=False)
    progress.advance()
    progress.finish()
    erase = "\r\x1b[K"
    assert stream.getvalue() == (
        "  + created A\n"
        f"{erase}1/3 created…"
        f"{erase}  x failed B\n{erase}1/3 created…"
        f"{erase}1/3 created… (1 not created)"
        f"{erase}2/3 created… (1 not created)"
        f"{erase}"
    )


def test_progress_off_a_terminal_prints_only_the_lines() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream)
    assert not progress.enabled
    progress.echo("  + created A")
    progress.advance()
    progress.echo("  + created B")
    progress.advance()
    progress.finish()
    assert stream.getvalue() == "  + created A\n  + created B\n"
    assert progress.text() == "2/2 created…"


def test_progress_can_be_forced_off_on_a_terminal() -> None:
    stream = FakeTerminal()
    progress = Progress(1, stream, enabled=False)
    progress.advance()
    progress.finish()
    assert stream.getvalue() == ""
    assert is_terminal(stream)


def test_colorize_warnings_and_nested_items() -> None:
    text = (
        "    ~ numbers :\n"
        '        + "+15550100002"\n'
        '        - "+15550100000"\n'
        'Warning: orphan "C": in the state, not in the file\n'
        "Plan: 1 changed\n"
    )
    assert colorize_plan_text(text) == (
        click.style("    ~ numbers :", fg="yellow")
        + "\n"
        + click.style('        + "+15550100002"', fg="green")
        + "\n"
        + click.style('        - "+15550100000"', fg="red")
        + "\n"
        + click.style('Warning: orphan "C": in the state, not in the file', fg="yellow", bold=True)
        + "\n"
        + "Plan: 1 changed\n"
    )
