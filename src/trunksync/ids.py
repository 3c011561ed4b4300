"""The one shape of a trunk id, checked wherever an id enters: create answers,
list items, the state file, `import`."""

from __future__ import annotations

import re
from typing import TypeGuard

# `ST_` then a bounded run of characters that are safe in a terminal, a URL
# path, a shell word and a YAML or JSON string without quoting or escaping.
TRUNK_ID = re.compile(r"ST_[A-Za-z0-9_-]{1,64}", re.ASCII)
TRUNK_ID_PATTERN = r"^ST_[A-Za-z0-9_-]{1,64}$"
TRUNK_ID_RULE = "ST_ then 1 to 64 letters, digits, _ or -"


def is_trunk_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and TRUNK_ID.fullmatch(value) is not None
