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
)

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


Text = Annotated[str, BeforeValidator(_text_of_number), Field(strict=True)]
NonEmptyText = Annotated[str, BeforeValidator(_text_of_number), Field(strict=True, min_length=1)]
PhoneNumber = Annotated[
    str, BeforeValidator(_text_of_number), Field(strict=True), AfterValidator(_check_e164)
]
Host = Annotated[str, Field(strict=True), AfterValidator(_check_bare_host)]
Secret = Annotated[SecretStr, Field(min_length=1)]
Port = Annotated[int, BeforeValidator(_number_from_text), Field(strict=True, ge=1, le=65535)]
TrunkName = Annotated[
    str, BeforeValidator(_text_of_number), Field(strict=True, min_length=1, max_length=100)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwilioConfig(_Strict):
    address: Host
    numbers: Annotated[list[PhoneNumber], Field(min_length=1)]
    username: Secret
    password: Secret


class ExotelConfig(_Strict):
    exotel_number: PhoneNumber
    sip_host: Host | None = None
    sip_port: Port | None = None
    sip_domain: Host | None = None


class TwilioTrunk(_Strict):
    trunk_name: TrunkName
    trunk_type: Literal["twilio"]
    trunk_config: TwilioConfig


class ExotelTrunk(_Strict):
    trunk_name: TrunkName
    trunk_type: Literal["exotel"]
    trunk_config: ExotelConfig


Trunk = Annotated[TwilioTrunk | ExotelTrunk, Discriminator("trunk_type")]


class DesiredFile(_Strict):
    version: Annotated[Literal[1], BeforeValidator(_number_from_text)]
    trunks: list[Trunk]


# Field names per level, for did-you-mean suggestions on unknown fields.
FIELDS_BY_LEVEL: dict[str, tuple[str, ...]] = {
    "file": tuple(DesiredFile.model_fields),
    "trunk": tuple(TwilioTrunk.model_fields),
    "twilio": tuple(TwilioConfig.model_fields),
    "exotel": tuple(ExotelConfig.model_fields),
}
