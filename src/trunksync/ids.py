"""The one shape of a trunk id (and of a trunk type name), checked wherever one
enters: create answers, list items, the state file, `import`."""

from __future__ import annotations

import re
from typing import TypeGuard

# `ST_` then a bounded run of characters that are safe in a terminal, a URL
# path, a shell word and a YAML or JSON string without quoting or escaping.
# Each shape is written once, anchored, for pydantic's pattern engine (the state
# file) and compiled here for Python's (answers from the platform): with fullmatch
# the two accept the same strings.
TRUNK_ID_PATTERN = r"^ST_[A-Za-z0-9_-]{1,64}$"
TRUNK_ID_RULE = "ST_ then 1 to 64 letters, digits, _ or -"
TRUNK_ID = re.compile(TRUNK_ID_PATTERN, re.ASCII)

# A trunk type as the state and the platform's list may name it: any bounded, plain
# name (which types are managed is the type registry's business).
TRUNK_TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
TRUNK_TYPE_RULE = "a lowercase letter then up to 31 lowercase letters, digits, _ or -"
TRUNK_TYPE = re.compile(TRUNK_TYPE_PATTERN, re.ASCII)


def is_trunk_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and TRUNK_ID.fullmatch(value) is not None


def is_trunk_type(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and TRUNK_TYPE.fullmatch(value) is not None
