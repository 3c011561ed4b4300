"""The trunk type registry: the built-in types, and a third type added as one module
that `validate`, `plan` and `schema` pick up with no other change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

from trunksync import trunk_types
from trunksync.cli import cli
from trunksync.commands.schema import desired_file_schema
from trunksync.config import load_desired
from trunksync.errors import TrunksyncError
from trunksync.trunk_types import TrunkTypeSpec
from trunksync.trunk_types.fields import Host, Secret

SID = "ACsentinel0000000000000000000000001"
TOKEN = "SENTINEL-AUTH-TOKEN-do-not-print"
ACME_TOKEN = "acme-token-SENTINEL-0123456789"
ENV = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "ACME_TOKEN": ACME_TOKEN}


def test_built_in_types_and_their_secrets() -> None:
    assert trunk_types.names()[:2] == ("twilio", "exotel")
    assert trunk_types.get("twilio").secret_fields == frozenset({"username", "password"})
    assert trunk_types.get("exotel").secret_fields == frozenset()
    assert trunk_types.get("exotel").config_fields == (
        "exotel_number", "sip_host", "sip_port", "sip_domain",
    )  # fmt: skip


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(TrunksyncError, match="unknown trunk type 'nope'"):
        trunk_types.get("nope")


class AcmeConfig(BaseModel):
    """trunk_config of an acme trunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: Host = Field(description="The Acme gateway host.")
    api_token: Secret = Field(description="The Acme API token, from ${VARIABLE}.")


ACME = TrunkTypeSpec("acme", AcmeConfig, "A trunk of type acme.")


@pytest.fixture
def acme() -> Iterator[TrunkTypeSpec]:
    trunk_types.register(ACME)
    try:
        yield ACME
    finally:
        trunk_types.unregister("acme")


ACME_FILE = """\
version: 1
trunks:
  - trunk_name: Acme One
    trunk_type: acme
    trunk_config:
      gateway: gw.acme.example
      api_token: ${ACME_TOKEN}
  - trunk_name: Exotel India
    trunk_type: exotel
    trunk_config:
      exotel_number: +918044319240
"""


def test_registering_a_type_derives_its_secret_fields(acme: TrunkTypeSpec) -> None:
    assert acme.secret_fields == frozenset({"api_token"})
    assert trunk_types.names()[-1] == "acme"
    assert "api_token" in trunk_types.secret_field_names()


def test_a_registered_type_loads(acme: TrunkTypeSpec, tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(ACME_FILE)
    first, _ = load_desired(path, ENV).trunks
    assert (first.trunk_type, first.config) == ("acme", {"gateway": "gw.acme.example"})
    assert first.secrets["api_token"].get_secret_value() == ACME_TOKEN


def test_a_registered_type_validates_and_plans_through_the_cli(
    acme: TrunkTypeSpec, tmp_path: Path
) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(ACME_FILE)
    state = tmp_path / "state.json"
    runner = CliRunner()
    validated = runner.invoke(cli, ["validate", "-f", str(path)], env=ENV)
    assert (validated.exit_code, validated.stdout) == (0, f"{path}: valid, 2 trunk(s).\n")
    planned = runner.invoke(cli, ["plan", "-f", str(path), "--state", str(state)], env=ENV)
    assert planned.exit_code == 0, planned.output
    assert '"Acme One" (acme)' in planned.stdout
    assert "gateway" in planned.stdout and "gw.acme.example" in planned.stdout
    assert ACME_TOKEN not in planned.output
    as_json = runner.invoke(
        cli, ["plan", "-f", str(path), "--state", str(state), "--json"], env=ENV
    )
    assert as_json.exit_code == 0, as_json.output
    assert ACME_TOKEN[:8] not in as_json.stdout


def test_a_registered_type_is_refused_with_a_type_error_once_removed(tmp_path: Path) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(ACME_FILE)
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)], env=ENV)
    assert result.exit_code == 1
    assert "trunk_type must be 'twilio' or 'exotel'" in result.stderr


def test_a_misspelt_field_of_a_registered_type_gets_a_suggestion(
    acme: TrunkTypeSpec, tmp_path: Path
) -> None:
    path = tmp_path / "trunks.yaml"
    path.write_text(ACME_FILE.replace("gateway:", "gatewey:"))
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)], env=ENV)
    assert result.exit_code == 1
    assert "unknown field 'gatewey' (did you mean 'gateway'?)" in result.stderr


def test_the_schema_follows_the_registry(acme: TrunkTypeSpec) -> None:
    schema = desired_file_schema()
    refs = [item["$ref"] for item in schema["properties"]["trunks"]["items"]["oneOf"]]
    assert refs == ["#/$defs/TwilioTrunk", "#/$defs/ExotelTrunk", "#/$defs/AcmeTrunk"]
    token = schema["$defs"]["AcmeConfig"]["properties"]["api_token"]
    assert token["writeOnly"] is True
    assert "discriminator" not in json.dumps(schema)


def test_the_registry_refuses_clashes() -> None:
    with pytest.raises(ValueError, match="already registered"):
        trunk_types.register(TrunkTypeSpec("twilio", AcmeConfig, "another twilio"))
    with pytest.raises(ValueError, match="a-z 0-9"):
        trunk_types.register(TrunkTypeSpec("Bad Name", AcmeConfig, "x"))

    class LeakyConfig(BaseModel):
        password: str  # secret in twilio, plain here: the loader decides by name

    with pytest.raises(ValueError, match="secret in one type only"):
        trunk_types.register(TrunkTypeSpec("leaky", LeakyConfig, "x"))
    assert "leaky" not in trunk_types.names()
