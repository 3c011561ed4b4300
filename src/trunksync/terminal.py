"""Terminal manners: colour only on a terminal, and a progress line only there.

Nothing here decides what is printed, only how: plain text stays the contract
(CI logs, pipes, tests), colour and the rewritten progress line are extras for
a person at a terminal. NO_COLOR (https://no-color.org) and --no-color win.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TextIO

import click

# The leading symbol of a plan or apply line -> click.style arguments.
STYLES: dict[str, dict[str, Any]] = {
    "+": {"fg": "green"},
    "~": {"fg": "yellow"},
    "!": {"fg": "red"},
    "=": {"dim": True},
    "x": {"fg": "red"},  # apply: failed
    "?": {"fg": "yellow"},  # apply: outcome unknown
    "-": {"fg": "red"},  # prune, retire, and replace ("-/+")
}
_LEADING_SYMBOL = re.compile(r"^\s*([+~!=x?-])(?:/\+)? ")
WARNING_PREFIX = "Warning: "
WARNING_STYLE: dict[str, Any] = {"fg": "yellow", "bold": True}
_ERASE_LINE = "\r\x1b[K"


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is an open terminal (fake and closed streams are not)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):
        return False


def use_color(no_color_flag: bool, stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, unless --no-color, NO_COLOR (non-empty) or TERM=dumb."""
    env = os.environ if environ is None else environ
    if no_color_flag or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def colorize_plan_text(text: str) -> str:
    """Colour each line of plan/apply text by its leading symbol; others stay plain."""
    return "".join(_colorize_line(line) for line in text.splitlines(keepends=True))


def _colorize_line(line: str) -> str:
    body = line.rstrip("\n")
    if line.startswith(WARNING_PREFIX):
        return click.style(body, **WARNING_STYLE) + line[len(body) :]
    match = _LEADING_SYMBOL.match(line)
    if match is None:
        return line
    return click.style(body, **STYLES[match.group(1)]) + line[len(body) :]


class Progress:
    """An "N/M created…" line rewritten in place on a terminal; silent elsewhere.

    Print the per-trunk lines through `echo` so that, on a terminal, they appear
    above the progress line instead of after it; off a terminal `echo` is a
    plain click.echo and no progress is drawn (CI logs get one line per trunk).
    """

    def __init__(self, total: int, stream: TextIO, enabled: bool | None = None) -> None:
        self.total = total
        self.created = 0
        self.not_created = 0
        self._stream = stream
        self.enabled = is_terminal(stream) if enabled is None else enabled
        self._shown = False

    def text(self) -> str:
        line = f"{self.created}/{self.total} created…"
        if self.not_created:
            line += f" ({self.not_created} not created)"
        return line

    def advance(self, created: bool = True) -> None:
        """Count one finished create and redraw the line."""
        if created:
            self.created += 1
        else:
            self.not_created += 1
        self._draw()

    def echo(self, line: str) -> None:
        """Print a whole line, keeping the progress line (if any) below it."""
        if self._shown:
            self._stream.write(_ERASE_LINE)
        click.echo(line, file=self._stream)
        if self._shown:
            self._draw()

    def finish(self) -> None:
        """Erase the progress line, leaving the cursor at the start of an empty line."""
        if self._shown:
            self._stream.write(_ERASE_LINE)
            self._stream.flush()
            self._shown = False

    def _draw(self) -> None:
        if not self.enabled:
            return
        self._stream.write(_ERASE_LINE + self.text())
        self._stream.flush()
        self._shown = True
