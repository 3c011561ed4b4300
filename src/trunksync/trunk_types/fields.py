"""Field types shared by the trunk types: the rules a value must meet, and the JSON
Schema that says exactly the same (`trunksync schema`).

Every pattern matches a WHOLE value in ASCII (re.fullmatch with re.ASCII, [0-9]),
so a trailing newline or a non-ASCII digit never passes. The schema patterns end
with `(?![\\s\\S])` (end of input) instead of `$`, because Python's `re.search`,
which the jsonschema library uses, lets `$` match before a final newline.

A string value in the file may be a ${VAR} reference, replaced before these
rules run; the schema cannot know the environment, so it accepts any string
holding a reference where a string is allowed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, WithJsonSchema

from trunksync.sanitize import has_unsafe_chars, printable

E164 = re.compile(r"\+[1-9][0-9]{1,14}", re.ASCII)
# A bare host name or IPv4 address: letters, digits, dots and dashes only, so
# that `sip:`, `user@`, `;params`, `:port` and `scheme://` are all refused.
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
BARE_HOST = re.compile(rf"(?=.{{1,253}}(?![\s\S])){HOST_LABEL}(?:\.{HOST_LABEL})*", re.ASCII)
# A port written as text (quoted, or from ${VAR}): 1 to 65535, no leading zero, no sign.
PORT_TEXT = re.compile(
    r"[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]",
    re.ASCII,
)
REFERENCE_PATTERN = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
# What the schema accepts for unsafe characters in a name: the same set as sanitize's.
UNSAFE_CLASS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
END = r"(?![\s\S])"  # end of input, in ECMA-262 and Python alike
TRUNK_NAME_MAX = 100
# E.164 as a YAML integer (`+15550100000` unquoted): 2 to 15 digits, the first not 0.
E164_MIN, E164_MAX = 10, 10**15 - 1


class YamlNumber(str):
    """The exact text of a plain YAML scalar that YAML 1.1 would read as a number.

    `+918044319240` or `0123` unquoted are integers to YAML 1.1; string fields
    keep the text the user wrote, number fields convert it.
    """


def schema_pattern(pattern: re.Pattern[str]) -> str:
    """A schema pattern matching the whole of `pattern` or any text holding a ${VAR}."""
    return f"^(?:(?:{pattern.pattern}){END}|[\\s\\S]*{REFERENCE_PATTERN})"


def _text_of_number(value: Any) -> Any:
    return str(value) if isinstance(value, YamlNumber) else value


def _port_from_text(value: Any) -> Any:
    if isinstance(value, YamlNumber):
        if re.fullmatch(r"[-+]?0[0-9_]+", value, re.ASCII):
            raise ValueError(
                f"{value} has a leading zero, which YAML reads as an octal number: "
                f'write {value.lstrip("+-0") or "0"} (and "{value}" in quotes is not a port)'
            )
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value  # a float such as 5060.0: refused as "not a whole number"
    # Text from quotes or ${VAR} (`sip_port: ${SIP_PORT}`) is a port when it is one.
    if isinstance(value, str) and PORT_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, str):
        raise ValueError("must be a whole number from 1 to 65535 (digits only, no leading zero)")
    return value


def _check_e164(value: str) -> str:
    if not E164.fullmatch(value):
        raise ValueError(f"{value!r} is not an E.164 number (+ then 2 to 15 digits, no spaces)")
    return value


def _check_bare_host(value: str) -> str:
    if not BARE_HOST.fullmatch(value):
        raise ValueError(
            f"{value!r} must be a bare host name such as example.pstn.twilio.com "
            "(no sip:, user@, ;parameters, :port or scheme)"
        )
    return value


def _check_name(value: str) -> str:
    if has_unsafe_chars(value):
        raise ValueError(
            f"'{printable(value)}' holds a control or bidi character (shown escaped); "
            "a trunk_name must be plain printable text"
        )
    return value


PHONE_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": schema_pattern(E164)},
            {"type": "integer", "minimum": E164_MIN, "maximum": E164_MAX},
        ],
        "description": "E.164: + then 2 to 15 digits, no spaces. YAML reads an unquoted "
        "+15550100000 as a number; trunksync keeps the text as written.",
    }
)
HOST_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": schema_pattern(BARE_HOST),
        "description": "A bare host name such as example.pstn.twilio.com "
        "(no sip:, user@, ;parameters, :port or scheme)",
    }
)
SECRET_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": f"^{REFERENCE_PATTERN}{END}",
        "writeOnly": True,
        "description": "A secret: exactly one ${VARIABLE}, set in the environment "
        "(plain text is refused unless --allow-plaintext-secrets)",
    }
)
PORT_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": schema_pattern(PORT_TEXT)},
        ],
        "description": "A port, 1 to 65535 (digits in quotes or from ${VAR} are read as a number)",
    }
)
NAME_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {
                "type": "string",
                "minLength": 1,
                "maxLength": TRUNK_NAME_MAX,
                "pattern": f"^[^{UNSAFE_CLASS}]*{END}",
            },
            {"type": "number"},
        ],
        "description": "The identity of the entry: 1 to 100 characters, no control or bidi "
        "characters, unique in the file. An unquoted number is kept as written.",
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
    int, BeforeValidator(_port_from_text), Field(strict=True, ge=1, le=65535), PORT_SCHEMA
]
TrunkName = Annotated[
    str,
    BeforeValidator(_text_of_number),
    Field(strict=True, min_length=1, max_length=TRUNK_NAME_MAX),
    AfterValidator(_check_name),
    NAME_SCHEMA,
]
