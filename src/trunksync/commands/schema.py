"""`trunksync schema`: print the JSON Schema of the desired-state file.

The schema is generated from the trunk type registry (through the models built
from it), so it cannot drift from what `validate` accepts; a differential test
runs a corpus through both. It is plain JSON Schema 2020-12: pydantic's vendor
keyword `discriminator` is dropped (each trunk schema pins its trunk_type with
`const`, so `oneOf` alone selects one). docs/trunks.schema.json is a copy that
editors (yaml-language-server) use, kept equal by a test.
"""

from __future__ import annotations

import json
from typing import Any

import click

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A URN, not a web address: the schema is published nowhere yet, and an $id that
# resolves to nothing would mislead a validator that fetches it.
SCHEMA_ID = "urn:trunksync:schema:desired-state:1"
VENDOR_KEYWORDS = frozenset({"discriminator"})
TITLE = "trunksync desired-state file"
DESCRIPTION = (
    "Outbound SIP trunks managed by trunksync (trunks.yaml). Each entry mirrors the "
    "body of POST /sip/create-outbound-trunk; trunk_name is its identity."
)


def desired_file_schema() -> dict[str, Any]:
    """The JSON Schema of the desired-state file, with dialect, title and description."""
    from trunksync.models import desired_file_model

    generated = _without_vendor_keywords(desired_file_model().model_json_schema())
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": TITLE,
        "description": DESCRIPTION,
        **generated,
    }


def _without_vendor_keywords(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: _without_vendor_keywords(value)
            for key, value in schema.items()
            if key not in VENDOR_KEYWORDS
        }
    if isinstance(schema, list):
        return [_without_vendor_keywords(item) for item in schema]
    return schema


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
