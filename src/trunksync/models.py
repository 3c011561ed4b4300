"""Pydantic models of the desired-state file: the schema users write against.

They mirror the request body of POST /sip/create-outbound-trunk, so the API's
own documentation describes the file. The tagged union of trunks is built from
the type registry (trunksync.trunk_types), so a new type is one module. Messages
are written for people: they never quote a secret's value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    WithJsonSchema,
    create_model,
)

from trunksync import trunk_types
from trunksync.trunk_types import TrunkTypeSpec

# Re-exported for callers that knew them here before the registry.
from trunksync.trunk_types.exotel import ExotelConfig as ExotelConfig
from trunksync.trunk_types.fields import BARE_HOST as BARE_HOST
from trunksync.trunk_types.fields import E164 as E164
from trunksync.trunk_types.fields import TrunkName
from trunksync.trunk_types.fields import YamlNumber as YamlNumber
from trunksync.trunk_types.twilio import TwilioConfig as TwilioConfig

LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+", re.ASCII)
TRUNK_NAME_DOC = (
    "The identity of the entry: 1 to 100 characters, no control or bidi characters, "
    "unique in the file."
)
TRUNK_LEVEL_FIELDS = ("trunk_name", "trunk_type", "trunk_config")
FILE_LEVEL_FIELDS = ("version", "trunks")


def _version(value: Any) -> Any:
    """`version: 1` or `"1"`; never `true` (YAML's yes), `1.0`, `01` or `"01"`.

    An unquoted number counts when it is the integer 1 as JSON sees it too (`0x1`,
    `+1`), so the schema agrees; a leading zero (YAML 1.1 octal) does not.
    """
    if isinstance(value, YamlNumber):
        if not LEADING_ZERO.fullmatch(value) and _as_int(value) == 1:
            return 1
    elif value == "1" or (type(value) is int and value == 1):
        return 1
    raise ValueError("version must be 1 (the only format this trunksync reads)")


def _as_int(text: str) -> int | None:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        return None


VERSION_SCHEMA = WithJsonSchema(
    {
        "anyOf": [{"const": 1}, {"const": "1"}],
        "description": "The format version of the file: 1.",
    }
)
Version = Annotated[Literal[1], BeforeValidator(_version), VERSION_SCHEMA]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _File(_Strict):
    # Top-level `x-` keys are ignored by the loader (free for YAML anchors).
    model_config = ConfigDict(json_schema_extra={"patternProperties": {"^x-": {}}})


def _trunk_model(spec: TrunkTypeSpec) -> type[BaseModel]:
    return create_model(
        f"{spec.title}Trunk",
        __base__=_Strict,
        __doc__=spec.description,
        trunk_name=(TrunkName, Field(description=TRUNK_NAME_DOC)),
        trunk_type=(cast(Any, Literal)[spec.name], ...),
        trunk_config=(spec.config_model, ...),
    )


_MODELS: dict[tuple[TrunkTypeSpec, ...], type[BaseModel]] = {}


def desired_file_model() -> type[BaseModel]:
    """The model of the whole file for the types registered now (built once per registry)."""
    specs = trunk_types.specs()
    model = _MODELS.get(specs)
    if model is None:
        model = _MODELS[specs] = _build_file_model(specs)
    return model


def _build_file_model(specs: tuple[TrunkTypeSpec, ...]) -> type[BaseModel]:
    trunk_models = tuple(_trunk_model(spec) for spec in specs)
    trunk: Any = (
        trunk_models[0]
        if len(trunk_models) == 1
        else Annotated[Union[trunk_models], Discriminator("trunk_type")]  # noqa: UP007
    )
    return create_model(
        "DesiredFile",
        __base__=_File,
        __doc__="The desired-state file: `version: 1` and the list of trunks.",
        version=(Version, Field(description="The format version of the file: 1.")),
        trunks=(
            list[trunk],
            Field(description="The outbound SIP trunks, each once by trunk_name."),
        ),
    )


def fields_by_level() -> dict[str, tuple[str, ...]]:
    """Field names per level, for did-you-mean suggestions on unknown fields."""
    levels: dict[str, tuple[str, ...]] = {"file": FILE_LEVEL_FIELDS, "trunk": TRUNK_LEVEL_FIELDS}
    for spec in trunk_types.specs():
        levels[spec.name] = spec.config_fields
    return levels


def __getattr__(name: str) -> Any:
    # `models.DesiredFile` and `models.SECRET_FIELDS` for existing callers: both follow
    # the registry as it is when they are read.
    if name == "DesiredFile":
        return desired_file_model()
    if name == "SECRET_FIELDS":
        return trunk_types.secret_field_names()
    if name == "FIELDS_BY_LEVEL":
        return fields_by_level()
    raise AttributeError(name)
