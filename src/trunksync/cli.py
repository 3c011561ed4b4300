"""The `trunksync` command: a thin click group that loads each command lazily.

Commands live one per module in trunksync.commands; importing them (and with
them httpx, pydantic, the emulator stack) only when that command runs keeps
`trunksync --help` fast. This group is also the one place where failures
become exit codes, for every command alike:

- a TrunksyncError is one line `Error: ...` on stderr and its exit code;
- a usage error (unknown option, bad value) exits 1, never click's 2: exit 2 is
  reserved for `--detailed-exitcode` ("changes present"), so a pipeline must
  never read a typo as "changes to review";
- a stray OSError (the last resort; commands turn the known ones into
  TrunksyncErrors) is one line and exit 1, never a traceback;
- with --json (or --format json) stdout still holds exactly one JSON document
  when the command fails: the error document of docs/json-format.md.
Every command also takes --no-color, added here when a command has none.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
from collections.abc import Sequence
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

USAGE_ERROR_EXIT = 1
ARGV_KEY = "trunksync.argv"  # ctx.meta key: the raw arguments after `trunksync`
NO_COLOR_HELP = "No colours (also: the NO_COLOR variable)."


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (--json, --format json).

    Read from the raw arguments because a usage error stops before any
    parameter is parsed; arguments after `--` are operands, not options.
    """
    words = list(argv)
    if "--" in words:
        words = words[: words.index("--")]
    if "--json" in words or "--format=json" in words:
        return True
    return any(a == "--format" and b == "json" for a, b in itertools.pairwise(words))


def _disable_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # Commands that colour text take their own --no-color (plan, apply); for the
    # others this strips any styling click.echo would print.
    if value:
        ctx.color = False


def _with_no_color(command: click.Command) -> None:
    """Give `command` (and its subcommands) a --no-color option if it has none."""
    if not any(param.name == "no_color" for param in command.params):
        command.params.append(
            click.Option(
                ["--no-color"],
                is_flag=True,
                expose_value=False,
                callback=_disable_color,
                help=NO_COLOR_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_no_color(sub)


class UsageFailure(click.UsageError):
    """A usage error re-raised with exit code 1; click shows it as before."""

    exit_code = USAGE_ERROR_EXIT


def _exit_1(error: click.UsageError) -> UsageFailure:
    return UsageFailure(error.format_message(), error.ctx)


_prepared: set[int] = set()


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
        if id(command) not in _prepared:
            _with_no_color(command)
            _prepared.add(id(command))
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every command module just to read its help.
        rows = [(name, SHORT_HELP[name]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:  # `trunksync --bogus`
            raise _exit_1(error) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[ARGV_KEY] = list(args)
        if os.environ.get("NO_COLOR"):
            ctx.color = False
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        # The single place where a failure becomes a message and an exit code.
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            _json_error(ctx, error.format_message(), USAGE_ERROR_EXIT)
            raise _exit_1(error) from None
        except TrunksyncError as error:
            _json_error(ctx, str(error), error.exit_code, error)
            click.echo(f"Error: {error}", err=True)
            raise click.exceptions.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(130) from None
        except OSError as error:
            message = _os_error_message(error)
            _json_error(ctx, message, 1)
            click.echo(f"Error: {message}", err=True)
            raise click.exceptions.Exit(1) from None


def _os_error_message(error: OSError) -> str:
    """`cannot write out/plan: No such file or directory`, without a traceback."""
    from trunksync.sanitize import printable

    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is not None:
        return printable(f"{os.fsdecode(error.filename)}: {reason}")
    return printable(reason)


def _json_error(
    ctx: click.Context, message: str, exit_code: int, error: BaseException | None = None
) -> None:
    """With --json, the failure is also the one JSON document on stdout."""
    if not wants_json(ctx.meta.get(ARGV_KEY, ())):
        return
    from trunksync.problem_report import error_document, problems_of

    problems = problems_of(error) if error is not None else []
    click.echo(json.dumps(error_document(message, exit_code, problems), indent=2))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trunksync")
def cli() -> None:
    """Declarative outbound SIP trunks: plan and apply trunks from YAML.

    Trunks are read from a YAML file (default trunks.yaml), compared with a
    local state file of trunk ids (default state/trunks.json), and only what
    is new is created through the platform API.

    Exit codes: 0 success, 1 error (usage errors included), 2 only with
    --detailed-exitcode when apply would change something.
    Shell completion: eval "$(_TRUNKSYNC_COMPLETE=bash_source trunksync)".
    """


def main() -> None:
    """Entry point of the `trunksync` script."""
    cli(prog_name="trunksync")
