"""`trunksync schema`: print the JSON Schema of the desired-state file.

The schema is generated from the pydantic models in trunksync.models, so it
cannot drift from what `validate` accepts; docs/trunks.schema.json is a copy
that editors (yaml-language-server) use, kept equal by a test.
"""

from __future__ import annotations

import json
from typing import Any

import click

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "trunksync desired-state file"
DESCRIPTION = (
    "Outbound SIP trunks managed by trunksync (trunks.yaml). Each entry mirrors the "
    "body of POST /sip/create-outbound-trunk; trunk_name is its identity."
)


def desired_file_schema() -> dict[str, Any]:
    """The JSON Schema of the desired-state file, with dialect, title and description."""
    from trunksync.models import DesiredFile

    generated = DesiredFile.model_json_schema()
    generated.pop("title", None)
    generated.pop("description", None)
    return {"$schema": SCHEMA_DIALECT, "title": TITLE, "description": DESCRIPTION, **generated}


def schema_text() -> str:
    """The schema as `trunksync schema` prints it (stable: indented, newline-terminated)."""
    return json.dumps(desired_file_schema(), indent=2, ensure_ascii=False) + "\n"


@click.command()
def schema() -> None:
    """Print the JSON Schema of the desired-state file.

    Save it and point your editor at it, for instance with the comment
    `# yaml-language-server: $schema=trunks.schema.json` at the top of
    trunks.yaml. Values written as ${VAR} are accepted wherever a string is.
    """
    click.echo(schema_text(), nl=False)
