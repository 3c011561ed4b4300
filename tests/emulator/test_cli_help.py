"""`trunksync emulator --help` documents every option (issue 10, item 6)."""

from __future__ import annotations

import click

from trunksync.commands.emulator import emulator


def test_every_emulator_option_has_help_text() -> None:
    options = [param for param in emulator.params if isinstance(param, click.Option)]
    assert options, "the emulator command has no options?"
    undocumented = [option.opts[0] for option in options if not (option.help or "").strip()]
    assert undocumented == []
