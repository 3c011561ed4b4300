"""`trunksync schema`: generated from the models, committed to docs/, and in
agreement with what validation accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from trunksync.cli import cli
from trunksync.commands.schema import desired_file_schema, schema_text
from trunksync.models import BARE_HOST, E164

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "trunks.schema.json"
EXAMPLE = ROOT / "examples" / "trunks.yaml"


def test_command_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == schema_text()
    assert json.loads(result.stdout) == desired_file_schema()


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "docs/trunks.schema.json is stale: run `trunksync schema > docs/trunks.schema.json`"
    )


def test_example_points_editors_at_the_committed_schema() -> None:
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/trunks.schema.json"
    assert (EXAMPLE.parent / "../docs/trunks.schema.json").resolve() == COMMITTED


def test_header_and_tagged_union_in_plain_json_schema() -> None:
    schema = desired_file_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:trunksync:schema:desired-state:1"
    assert schema["title"] == "trunksync desired-state file"
    assert schema["description"]
    assert schema["required"] == ["version", "trunks"]
    assert schema["additionalProperties"] is False
    assert schema["patternProperties"] == {"^x-": {}}
    items = schema["properties"]["trunks"]["items"]
    assert "discriminator" not in items  # a vendor keyword strict validators refuse
    assert items["oneOf"] == [{"$ref": "#/$defs/TwilioTrunk"}, {"$ref": "#/$defs/ExotelTrunk"}]
    defs = schema["$defs"]
    assert defs["TwilioTrunk"]["properties"]["trunk_type"]["const"] == "twilio"
    assert defs["ExotelTrunk"]["properties"]["trunk_type"]["const"] == "exotel"
    port = defs["ExotelConfig"]["properties"]["sip_port"]["anyOf"][0]["anyOf"]
    assert port[0] == {"type": "integer", "minimum": 1, "maximum": 65535}
    for text, accepted in (
        ("5070", True), ("${SIP_PORT}", True), ("50a", False), ("", False), ("05070", False),
        ("65535", True), ("65536", False), ("5070\n", False),
    ):  # fmt: skip
        assert (re.search(port[1]["pattern"], text) is not None) == accepted, text
    for secret in ("username", "password"):
        assert defs["TwilioConfig"]["properties"][secret]["writeOnly"] is True


def _string_pattern(prop: dict[str, Any]) -> str:
    """The pattern of a property's string form (phones also allow a YAML integer)."""
    forms = prop.get("anyOf", [prop])
    (string,) = [form for form in forms if form.get("type") == "string"]
    return str(string["pattern"])


def _patterns() -> dict[str, str]:
    defs = desired_file_schema()["$defs"]
    return {
        "phone": _string_pattern(defs["ExotelConfig"]["properties"]["exotel_number"]),
        "numbers": _string_pattern(defs["TwilioConfig"]["properties"]["numbers"]["items"]),
        "host": defs["TwilioConfig"]["properties"]["address"]["pattern"],
        "sip_host": defs["ExotelConfig"]["properties"]["sip_host"]["anyOf"][0]["pattern"],
    }


PHONES = ["+918044319240", "+15550100000", "+12", "+1", "918044319240", "+0123", "+1555 0100"]
PHONES += ["+1234567890123456", "+123456789012345", "${NUMBER}", "+91${TAIL}"]
PHONES += ["+15550100000\n", "+1555\u0660\u0661\u0660\u0660\u0660\u0660\u0660"]
HOSTS = ["example.pstn.twilio.com", "sip.example.in", "10.0.0.1", "sip:x.com", "a@b.com"]
HOSTS += ["x.com:5060", "x.com;transport=tls", "https://x.com", "-x.com", "", "${HOST}.example.in"]
HOSTS += ["example.com\n"]


@pytest.mark.parametrize("value", PHONES)
def test_phone_pattern_accepts_exactly_what_validation_accepts(value: str) -> None:
    accepted = "${" in value or E164.fullmatch(value) is not None
    for key in ("phone", "numbers"):
        assert (re.search(_patterns()[key], value) is not None) == accepted


@pytest.mark.parametrize("value", HOSTS)
def test_host_pattern_accepts_exactly_what_validation_accepts(value: str) -> None:
    accepted = "${" in value or BARE_HOST.fullmatch(value) is not None
    for key in ("host", "sip_host"):
        assert (re.search(_patterns()[key], value) is not None) == accepted


def _example() -> Any:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_values_match_the_schema_patterns() -> None:
    patterns = _patterns()
    for trunk in _example()["trunks"]:
        config = trunk["trunk_config"]
        for number in [*config.get("numbers", []), config.get("exotel_number")]:
            if number is not None:
                assert re.search(patterns["phone"], number), number
        for key in ("address", "sip_host", "sip_domain"):
            if key in config:
                assert re.search(patterns["host"], config[key]), config[key]


def test_example_validates_against_the_committed_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(COMMITTED.read_text())
    jsonschema.validate(_example(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "trunks": [{"trunk_type": "exotel"}]}, schema)
