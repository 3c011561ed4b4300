"""The `trunksync` command: a thin click group that loads each command lazily.

Commands live one per module in trunksync.commands; importing them (and with
them httpx, pydantic, the emulator stack) only when that command runs keeps
`trunksync --help` fast. Every TrunksyncError becomes one line on stderr and
its exit code here, and nowhere else.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from trunksync import __version__
from trunksync.errors import TrunksyncError

# pydantic looks for plugins through every installed package's entry points the
# first time a model is built (~10 ms of every run); a CLI wants none of them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# command name -> "module:attribute", in the order `--help` lists them.
COMMANDS = {
    "validate": "trunksync.commands.validate:validate",
    "plan": "trunksync.commands.plan:plan",
    "apply": "trunksync.commands.apply:apply",
    "output": "trunksync.commands.output:output",
    "import": "trunksync.commands.import_:import_",
    "state": "trunksync.commands.state:state",
    "schema": "trunksync.commands.schema:schema",
    "emulator": "trunksync.commands.emulator:emulator",
}

SHORT_HELP = {
    "validate": "Check the desired-state file offline.",
    "plan": "Show what apply would change.",
    "apply": "Create the trunks that are new, recording their ids.",
    "output": "Print trunk name -> trunk id from the state.",
    "import": "Record an existing trunk id for an entry of the file.",
    "state": "Inspect the state file, or edit it (rm, mv).",
    "schema": "Print the JSON Schema of the desired-state file.",
    "emulator": "Serve the platform API on loopback (needs trunksync[emulator]).",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every command module just to read its help.
        rows = [(name, SHORT_HELP[name]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # The single place where a TrunksyncError becomes a message and an exit code.
        try:
            return super().invoke(ctx)
        except TrunksyncError as error:
            click.echo(f"Error: {error}", err=True)
            raise click.exceptions.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(130) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trunksync")
def cli() -> None:
    """Declarative outbound SIP trunks: plan and apply trunks from YAML.

    Trunks are read from a YAML file (default trunks.yaml), compared with a
    local state file of trunk ids (default state/trunks.json), and only what
    is new is created through the platform API.
    """


def main() -> None:
    """Entry point of the `trunksync` script."""
    cli(prog_name="trunksync")
