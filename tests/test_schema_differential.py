"""The schema and the loader agree: a corpus of valid and invalid files through both
`trunksync validate` and a JSON Schema 2020-12 validator, with the same verdict for
each. The cases where a verdict cannot agree are listed with why, and each is checked
to still disagree (so the list cannot go stale silently)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from trunksync.cli import cli

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "trunks.schema.json").read_text())
ENV = {
    "TWILIO_ACCOUNT_SID": "ACsentinel0000000000000000000000001",
    "TWILIO_AUTH_TOKEN": "SENTINEL-AUTH-TOKEN-do-not-print",
    "NUMBER": "+15550100000",
    "HOST": "acme",
    "PORT": "5070",
}

TWILIO = """\
version: {version}
trunks:
  - trunk_name: {name}
    trunk_type: {trunk_type}
    trunk_config:
      address: {address}
      numbers: {numbers}
      username: ${{TWILIO_ACCOUNT_SID}}
      password: {password}
"""
EXOTEL = """\
version: 1
trunks:
  - trunk_name: Exotel India
    trunk_type: exotel
    trunk_config:
      exotel_number: {number}
{extra}"""


def twilio(**fields: str) -> str:
    values = {
        "version": "1",
        "name": "Twilio Production",
        "trunk_type": "twilio",
        "address": "example.pstn.twilio.com",
        "numbers": '["+15550100000"]',
        "password": "${TWILIO_AUTH_TOKEN}",
        **fields,
    }
    return TWILIO.format(**values)


def exotel(number: str = '"+918044319240"', **extra: str) -> str:
    lines = "".join(f"      {key}: {value}\n" for key, value in extra.items())
    return EXOTEL.format(number=number, extra=lines)


VALID = {
    "the example": twilio(),
    "unquoted E.164 number": exotel("+918044319240"),
    "unquoted numbers list": twilio(numbers="[+15550100000, +15550100001]"),
    "version as text": twilio(version='"1"'),
    "version in hex": twilio(version="0x1"),
    "numeric trunk_name": twilio(name="12345"),
    "float trunk_name": twilio(name="1.5"),
    "date-like trunk_name": twilio(name="2024-01-01"),
    "name of 100 characters": twilio(name="n" * 100),
    "non-ASCII name": twilio(name="Téléphone 東京"),
    "port as number": exotel(sip_port="5070"),
    "port as text": exotel(sip_port='"5070"'),
    "highest port": exotel(sip_port="65535"),
    "port from a variable": exotel(sip_port="${PORT}"),
    "null optional host": exotel(sip_host="null"),
    "all exotel overrides": exotel(sip_host="sip.example.in", sip_port="5061", sip_domain="x.in"),
    "number from a variable": exotel("${NUMBER}"),
    "host from a variable": twilio(address="${HOST}.pstn.twilio.com"),
    "no trunks": "version: 1\ntrunks: []\n",
    "x- keys and merge keys": (
        "version: 1\nx-base: &base\n  trunk_type: exotel\ntrunks:\n"
        '  - <<: *base\n    trunk_name: E\n    trunk_config: {exotel_number: "+918044319240"}\n'
    ),
    "IPv4 address as host": twilio(address="10.0.0.1"),
    "shortest E.164": twilio(numbers='["+12"]'),
    "longest E.164": twilio(numbers='["+123456789012345"]'),
}

INVALID = {
    "version 2": twilio(version="2"),
    "version text 2": twilio(version='"2"'),
    "version true": twilio(version="true"),
    "version text 01": twilio(version='"01"'),
    "version text 1.0": twilio(version='"1.0"'),
    "version text 0x1": twilio(version='"0x1"'),
    "no version": "trunks: []\n",
    "empty name": twilio(name='""'),
    "boolean name": twilio(name="yes"),
    "null name": twilio(name="null"),
    "name of 101 characters": twilio(name="n" * 101),
    "escape in name": twilio(name='"red\\x1b[31m"'),
    "newline in name": twilio(name='"a\\nb"'),
    "bidi override in name": twilio(name='"x\\u202ey"'),
    "C1 control in name": twilio(name='"x\\x85y"'),
    "unknown type": twilio(trunk_type="vonage"),
    "numeric type": twilio(trunk_type="1"),
    "empty numbers": twilio(numbers="[]"),
    "number without plus": twilio(numbers='["15550100000"]'),
    "number with a trailing newline": twilio(numbers='["+15550100000\\n"]'),
    "number with Arabic-Indic digits": twilio(
        numbers='["+1\\u0665\\u0665\\u0665\\u0660\\u0661\\u0660\\u0660\\u0660\\u0660\\u0660"]'
    ),
    "number with a space": exotel('"+91 8044319240"'),
    "number too long": twilio(numbers='["+1234567890123456"]'),
    "number starting with zero": twilio(numbers='["+0123"]'),
    "number as a boolean": exotel("yes"),
    "number as a float": exotel("+9180.5"),
    "host with scheme": twilio(address="sip:example.com"),
    "host with port": twilio(address='"example.com:5060"'),
    "host with a trailing newline": twilio(address='"example.com\\n"'),
    "host with user": twilio(address="user@example.com"),
    "host too long": twilio(address=".".join(["a" * 60] * 5)),
    "port zero": exotel(sip_port="0"),
    "port too big": exotel(sip_port="70000"),
    "port text too big": exotel(sip_port='"70000"'),
    "port text with a leading zero": exotel(sip_port='"05070"'),
    "port text with a sign": exotel(sip_port='"+5070"'),
    "port with a fraction": exotel(sip_port="5060.5"),
    "port as a word": exotel(sip_port="http"),
    "port as a boolean": exotel(sip_port="on"),
    "plain-text password": twilio(password="hunter2"),
    "password partly a reference": twilio(password='"hunter2${EMPTY}"'),
    "password as a number": twilio(password="12345"),
    "unknown trunk field": twilio() + "    region: eu\n",
    "unknown config field": exotel(sip_proxy="x.in"),
    "unknown top-level field": twilio() + "owner: me\n",
    "missing trunk_config": "version: 1\ntrunks:\n  - {trunk_name: A, trunk_type: exotel}\n",
    "trunks null": "version: 1\ntrunks:\n",
    "trunks a mapping": "version: 1\ntrunks: {a: 1}\n",
    "a list at the top": "- version: 1\n",
    "config a list": (
        "version: 1\ntrunks:\n  - {trunk_name: A, trunk_type: exotel, trunk_config: []}\n"
    ),
}

# Files where no JSON Schema can give validate's verdict, and why. Each is checked to
# disagree exactly as stated.
UNDECIDABLE = {
    "version 1.0": (
        twilio(version="1.0"),
        "JSON has one number 1: 1.0 is the integer 1 to JSON Schema (and to ajv), while "
        "validate sees the text 1.0 and refuses a version that is not 1",
    ),
    "version 01": (
        twilio(version="01"),
        "YAML 1.1 reads 01 as the octal number 1; validate refuses a leading zero",
    ),
    "port 05070 unquoted": (
        exotel(sip_port="05070"),
        "YAML 1.1 reads 05070 as octal 2616, a valid port to the schema; validate names the "
        "leading zero, which is what the writer meant",
    ),
    "port 5070.0": (
        exotel(sip_port="5070.0"),
        "5070.0 is the integer 5070 to JSON Schema; validate wants a whole number written so",
    ),
    "unquoted number without plus": (
        twilio(numbers="[15550100000]"),
        "YAML gives the same integer for +15550100000 and 15550100000; validate keeps the "
        "text and refuses the one without +",
    ),
    "unquoted octal-looking number": (
        exotel("+0123"),
        "YAML 1.1 reads +0123 as octal 83; validate keeps the text, not E.164",
    ),
    "duplicate names": (
        twilio() + twilio().split("trunks:\n", 1)[1],
        "JSON Schema cannot compare one property across the items of an array "
        "(uniqueItems compares whole items)",
    ),
    "unset variable": (
        twilio(address="${NOT_SET}"),
        "the schema cannot see the environment: it accepts any ${VAR} where text is allowed",
    ),
}


class _JsonLikeLoader(yaml.SafeLoader):
    """YAML as an editor's schema check sees it: timestamps stay text (JSON has none)."""


_JsonLikeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def schema_accepts(text: str) -> bool:
    instance: Any = yaml.load(text, Loader=_JsonLikeLoader)
    return bool(jsonschema.Draft202012Validator(SCHEMA).is_valid(instance))


def validate_accepts(text: str, tmp_path: Path) -> bool:
    path = tmp_path / "trunks.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)], env=ENV)
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    return result.exit_code == 0


def test_the_schema_is_plain_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"]
    assert "discriminator" not in json.dumps(SCHEMA)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_files_pass_both(name: str, tmp_path: Path) -> None:
    text = VALID[name]
    assert (validate_accepts(text, tmp_path), schema_accepts(text)) == (True, True)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_files_fail_both(name: str, tmp_path: Path) -> None:
    text = INVALID[name]
    assert (validate_accepts(text, tmp_path), schema_accepts(text)) == (False, False)


@pytest.mark.parametrize("name", sorted(UNDECIDABLE))
def test_listed_cases_are_the_only_disagreements(name: str, tmp_path: Path) -> None:
    text, why = UNDECIDABLE[name]
    assert why
    # In every listed case validate is the stricter: the schema never refuses a good file.
    assert (validate_accepts(text, tmp_path), schema_accepts(text)) == (False, True)
