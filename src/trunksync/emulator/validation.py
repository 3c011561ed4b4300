"""Checks that a trunk_config matches its trunk_type (the platform answers 400).

Kept apart from the request model on purpose: a wrong body shape is a 422 in
FastAPI style, while a config that does not fit its type is a 400 with one
readable message, as the platform documents.
"""

from __future__ import annotations

import re
from typing import Any

# fullmatch and [0-9], not `^...$` and \d: `$` accepts a trailing newline and \d
# accepts non-ASCII digits, neither of which is E.164.
E164 = re.compile(r"\+[1-9][0-9]{1,14}")

# field -> (required, expected JSON type) per trunk_type, from API.md.
_STRING = "string"
_NUMBERS = "list of E.164 strings"
_PORT = "integer between 1 and 65535"
CONFIG_FIELDS: dict[str, dict[str, tuple[bool, str]]] = {
    "twilio": {
        "address": (True, _STRING),
        "numbers": (True, _NUMBERS),
        "username": (True, _STRING),
        "password": (True, _STRING),
    },
    "exotel": {
        "exotel_number": (True, _STRING),
        "sip_host": (False, _STRING),
        "sip_port": (False, _PORT),
        "sip_domain": (False, _STRING),
    },
}


def trunk_config_problems(trunk_type: str, config: dict[str, Any]) -> list[str]:
    """Every way `config` fails the shape of `trunk_type`; empty when it fits.

    Values are never echoed except phone numbers, since the config holds
    credentials (username, password).
    """
    fields = CONFIG_FIELDS[trunk_type]
    where = f"trunk_config for trunk_type {trunk_type!r}"
    problems: list[str] = []
    for name in config:
        if name not in fields:
            allowed = ", ".join(fields)
            problems.append(f"{where} has unknown field {name!r} (allowed: {allowed})")
    for name, (required, kind) in fields.items():
        if name not in config or (not required and config[name] is None):
            # An explicit null for an optional field reads as "not given".
            if required:
                problems.append(f"{where} is missing required field {name!r}")
            continue
        problems.extend(_value_problems(f"trunk_config.{name}", kind, config[name]))
    return problems


def _value_problems(label: str, kind: str, value: Any) -> list[str]:
    if kind == _STRING:
        if not isinstance(value, str) or not value:
            return [f"{label} must be a non-empty string"]
        return []
    if kind == _PORT:
        # bool is an int in Python but not a port number in JSON.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            return [f"{label} must be an {_PORT}"]
        return []
    if not isinstance(value, list):
        return [f"{label} must be a {_NUMBERS}"]
    if not value:
        return [f"{label} must contain at least one number"]
    problems = []
    for index, number in enumerate(value):
        if not isinstance(number, str):
            problems.append(f"{label}[{index}] must be a string")
        elif not E164.fullmatch(number):
            problems.append(
                f"{label}[{index}] {number!r} is not an E.164 number ('+' then up to 15 digits)"
            )
    return problems
