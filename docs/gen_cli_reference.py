"""Generate docs/cli.md, the CLI reference, from the `--help` of every command.

Run `python docs/gen_cli_reference.py` after changing any command or option;
tests/test_cli_reference.py fails while docs/cli.md is stale. The help is
rendered at a fixed width of 80 columns so the output does not depend on the
terminal it is generated in.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from trunksync.cli import COMMANDS, cli

WIDTH = 80
OUTPUT = Path(__file__).resolve().parent / "cli.md"
HEADER = """\
# CLI reference

Generated from `--help` by `python docs/gen_cli_reference.py`: do not edit by
hand. Run that command after changing a command or an option.
"""


def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, as argument paths, in `--help` order."""
    paths: list[tuple[str, ...]] = [()]
    context = click.Context(cli, info_name="trunksync")
    for name in COMMANDS:
        command = cli.get_command(context, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            sub_context = click.Context(command, info_name=name, parent=context)
            paths += [(name, sub) for sub in command.list_commands(sub_context)]
    return paths


def help_text(path: tuple[str, ...]) -> str:
    """The `--help` output of `trunksync *path`, at WIDTH columns."""
    result = CliRunner().invoke(
        cli, [*path, "--help"], prog_name="trunksync", terminal_width=WIDTH, env={"COLUMNS": "80"}
    )
    if result.exit_code != 0:
        raise RuntimeError(f"trunksync {' '.join(path)} --help failed: {result.output}")
    return result.stdout


def render_reference() -> str:
    """The whole of docs/cli.md."""
    sections = [HEADER]
    for path in command_paths():
        title = " ".join(("trunksync", *path))
        sections.append(f"## {title}\n\n```text\n{help_text(path).rstrip()}\n```\n")
    return "\n".join(sections)


def main() -> None:
    OUTPUT.write_text(render_reference(), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
