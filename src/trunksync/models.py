"""Pydantic models of the desired-state file: the schema users write against.

They mirror the request body of POST /sip/create-outbound-trunk, so the API's
own documentation describes the file. Messages are written for people: they
never quote a secret's value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    WithJsonSchema,
)

DIGITS = re.compile(r"^[0-9]{1,5}$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# A bare host name or IPv4 address: letters, digits, dots and dashes only, so
# that `sip:`, `user@`, `;params`, `:port` and `scheme://` are all refused.
BARE_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

SECRET_FIELDS = frozenset({"username", "password"})


class YamlNumber(str):
    """The exact text of a plain YAML scalar that YAML 1.1 would read as a number.

    `+918044319240` or `0123` unquoted are integers to YAML 1.1; string fields
    keep the text the user wrote, number fields convert it.
    """


def _text_of_number(value: Any) -> Any:
    return str(value) if isinstance(value, YamlNumber) else value


def _number_from_text(value: Any) -> Any:
    if isinstance(value, YamlNumber):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    # Plain digits from ${VAR} (`sip_port: ${SIP_PORT}`) or quotes are a port too.
    if isinstance(value, str) and DIGITS.match(value):
        return int(value)
    return value


def _check_e164(value: str) -> str:
    if not E164.match(value):
        raise ValueError(f"{value!r} is not an E.164 number (+ then 2 to 15 digits, no spaces)")
    return value


def _check_bare_host(value: str) -> str:
    if not BARE_HOST.match(value):
        raise ValueError(
            f"{value!r} must be a bare host name such as example.pstn.twilio.com "
            "(no sip:, user@, ;parameters, :port or scheme)"
        )
    return value


# JSON Schema of the custom types, for editors (`trunksync schema`). They only
# describe what validation accepts; validation is done by the validators alone.
# A string value may also be a ${VAR} reference, replaced before validation.
REFERENCE_PATTERN = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"


def _or_reference(pattern: re.Pattern[str]) -> str:
    """A schema pattern matching `pattern` or any text holding a ${VAR} reference."""
    return f"^(?:{pattern.pattern[1:-1]}|.*{REFERENCE_PATTERN}.*)$"


PHONE_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": _or_reference(E164),
        "description": 'E.164: + then 2 to 15 digits, no spaces (quote it in YAML: "+15550100000")',
    }
)
HOST_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": _or_reference(BARE_HOST),
        "description": "A bare host name such as example.pstn.twilio.com "
        "(no sip:, user@, ;parameters, :port or scheme)",
    }
)
SECRET_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "minLength": 1,
        "pattern": REFERENCE_PATTERN,
        "writeOnly": True,
        "description": "A secret: write ${VARIABLE} and set it in the environment "
        "(plain text is refused unless --allow-plaintext-secrets)",
    }
)
PORT_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": _or_reference(DIGITS)},
        ],
        "description": "A port, 1 to 65535 (digits in quotes or from ${VAR} are read as a number)",
    }
)

Text = Annotated[str, BeforeValidator(_text_of_number), Field(strict=True)]
NonEmptyText = Annotated[str, BeforeValidator(_text_of_number), Field(strict=True, min_length=1)]
PhoneNumber = Annotated[
    str,
    BeforeValidator(_text_of_number),
    Field(strict=True),
    AfterValidator(_check_e164),
    PHONE_SCHEMA,
]
Host = Annotated[str, Field(strict=True), AfterValidator(_check_bare_host), HOST_SCHEMA]
Secret = Annotated[SecretStr, Field(min_length=1), SECRET_SCHEMA]
Port = Annotated[
    int, BeforeValidator(_number_from_text), Field(strict=True, ge=1, le=65535), PORT_SCHEMA
]
TrunkName = Annotated[
    str, BeforeValidator(_text_of_number), Field(strict=True, min_length=1, max_length=100)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwilioConfig(_Strict):
    """trunk_config of a twilio trunk."""

    address: Host = Field(description="The Twilio SIP termination domain.")
    numbers: Annotated[list[PhoneNumber], Field(min_length=1)] = Field(
        description="The phone numbers of the trunk, E.164."
    )
    username: Secret = Field(description="The Twilio Account SID, from ${VARIABLE}.")
    password: Secret = Field(description="The Twilio Auth Token, from ${VARIABLE}.")


class ExotelConfig(_Strict):
    """trunk_config of an exotel trunk."""

    exotel_number: PhoneNumber = Field(
        description="The Exotel virtual number used as caller ID, E.164."
    )
    sip_host: Host | None = Field(None, description="Overrides the default Exotel SIP proxy host.")
    sip_port: Port | None = Field(None, description="Overrides the default Exotel SIP proxy port.")
    sip_domain: Host | None = Field(
        None, description="Overrides the default Exotel SIP domain (realm)."
    )


TRUNK_NAME_DOC = "The identity of the entry: 1 to 100 characters, unique in the file."


class TwilioTrunk(_Strict):
    """A trunk of type twilio."""

    trunk_name: TrunkName = Field(description=TRUNK_NAME_DOC)
    trunk_type: Literal["twilio"]
    trunk_config: TwilioConfig


class ExotelTrunk(_Strict):
    """A trunk of type exotel."""

    trunk_name: TrunkName = Field(description=TRUNK_NAME_DOC)
    trunk_type: Literal["exotel"]
    trunk_config: ExotelConfig


Trunk = Annotated[TwilioTrunk | ExotelTrunk, Discriminator("trunk_type")]


class DesiredFile(_Strict):
    """The desired-state file: `version: 1` and the list of trunks."""

    # Top-level `x-` keys are ignored by the loader (free for YAML anchors).
    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})

    version: Annotated[Literal[1], BeforeValidator(_number_from_text)] = Field(
        description="The format version of the file: 1."
    )
    trunks: list[Trunk] = Field(description="The outbound SIP trunks, each once by trunk_name.")


# Field names per level, for did-you-mean suggestions on unknown fields.
FIELDS_BY_LEVEL: dict[str, tuple[str, ...]] = {
    "file": tuple(DesiredFile.model_fields),
    "trunk": tuple(TwilioTrunk.model_fields),
    "twilio": tuple(TwilioConfig.model_fields),
    "exotel": tuple(ExotelConfig.model_fields),
}
