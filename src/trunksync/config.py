"""Load the desired-state file: YAML text -> validated, typed trunks.

All problems are collected and raised together as one ConfigError, each as
`FILE:LINE:COL: message`, so a user fixes a file in one pass.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import SecretStr, TypeAdapter, ValidationError

from trunksync.errors import ConfigError, did_you_mean
from trunksync.models import FIELDS_BY_LEVEL, SECRET_FIELDS, DesiredFile
from trunksync.yamlnodes import MERGE, NodeWalker

REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADAPTER: TypeAdapter[DesiredFile] | None = None


class DesiredTrunk(NamedTuple):
    """One trunk as the file asks for it; secrets stay wrapped in SecretStr."""

    name: str
    trunk_type: str
    config: dict[str, Any]
    secrets: dict[str, SecretStr]
    line: int

    def request_body(self) -> dict[str, Any]:
        """The JSON body of the create call (the only place secrets are revealed)."""
        revealed = {field: secret.get_secret_value() for field, secret in self.secrets.items()}
        return {
            "trunk_name": self.name,
            "trunk_type": self.trunk_type,
            "trunk_config": {**self.config, **revealed},
        }


class Desired(NamedTuple):
    path: str
    trunks: tuple[DesiredTrunk, ...]


class _Problems:
    """Collects `FILE:LINE:COL: message` lines, sortable by position."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[int, int, str]] = []

    def at(self, mark: yaml.Mark | None, message: str) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.items.append((line, column, message))

    def node(self, node: yaml.Node, message: str) -> None:
        self.at(node.start_mark, message)

    def raise_if_any(self) -> None:
        if self.items:
            # A value shared through an anchor is walked once per use: report it once.
            unique = sorted(set(self.items))
            raise ConfigError([f"{self.path}:{ln}:{col}: {msg}" for ln, col, msg in unique])


def load_desired(
    path: Path, environ: Mapping[str, str], allow_plaintext_secrets: bool = False
) -> Desired:
    """Read, interpolate and validate the desired-state file at `path`."""
    with _gc_paused():
        return _load_desired(path, environ, allow_plaintext_secrets)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is loaded.

    Loading allocates hundreds of thousands of small objects (nodes, marks,
    values) that hold no reference cycles, so reference counting frees them
    all; but each allocation burst makes the cyclic collector rescan every
    live object again, which cost 3-4x the parse itself on 10,000 trunks
    (see docs/performance.md). The previous setting is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_desired(path: Path, environ: Mapping[str, str], allow_plaintext_secrets: bool) -> Desired:
    problems = _Problems(str(path))
    root = _compose(path, problems)
    interpolator = _Interpolator(environ, problems, allow_plaintext_secrets)
    walker = NodeWalker(problems.node, interpolator)
    try:
        data = walker.value(root)
    except (OverflowError, RecursionError):
        problems.node(root, "the document is too large or too deeply nested")
        problems.raise_if_any()
    _check_top_level(root, data, problems)
    model = _validate(data, root, problems)
    _check_duplicate_names(root, data, problems)
    problems.raise_if_any()
    assert model is not None  # validation problems were raised above
    return Desired(
        str(path), tuple(_to_desired(trunk, root, i) for i, trunk in enumerate(model.trunks))
    )


def _compose(path: Path, problems: _Problems) -> yaml.Node:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (pass -f FILE to choose another)"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot read: {error.strerror}"]) from None
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as error:
        problems.at(error.problem_mark, f"invalid YAML: {error.problem}")
        problems.raise_if_any()
        raise  # unreachable: a problem was recorded
    except yaml.YAMLError as error:
        raise ConfigError([f"{path}: invalid YAML: {error}"]) from None
    if root is None:
        raise ConfigError([f"{path}:1:1: the file is empty; expected 'version: 1' and 'trunks:'"])
    return root


class _Interpolator:
    """Replaces ${VAR} in string values; flags secrets written in plain text."""

    def __init__(self, environ: Mapping[str, str], problems: _Problems, allow_plain: bool) -> None:
        self._environ = environ
        self._problems = problems
        self._allow_plain = allow_plain

    def __call__(self, node: yaml.ScalarNode, key: str | None) -> str:
        text: str = node.value
        if key in SECRET_FIELDS and not self._allow_plain and not _has_reference(text):
            self._problems.node(
                node,
                f"{key} is written in plain text; put it in an environment variable and write "
                f"'{key}: ${{VARIABLE}}' (or pass --allow-plaintext-secrets)",
            )
        if "$" not in text:
            return text
        return REFERENCE.sub(lambda match: self._substitute(node, match), text)

    def _substitute(self, node: yaml.ScalarNode, match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not VARIABLE_NAME.match(name):
            self._problems.node(node, f"invalid variable reference ${{{name}}}")
            return ""
        if name not in self._environ:
            self._problems.node(node, f"environment variable {name} is not set")
            return ""
        return self._environ[name]


def _has_reference(text: str) -> bool:
    return any(not match.group(1) for match in REFERENCE.finditer(text))


def _check_top_level(root: yaml.Node, data: Any, problems: _Problems) -> None:
    if not isinstance(data, dict):
        problems.node(root, "expected a mapping with 'version: 1' and 'trunks:'")
        problems.raise_if_any()
    # `x-` keys are free for YAML anchors shared between trunks, as in Compose files.
    for key in [key for key in data if isinstance(key, str) and key.startswith("x-")]:
        del data[key]


def _validate(data: Any, root: yaml.Node, problems: _Problems) -> DesiredFile | None:
    global _ADAPTER
    _ADAPTER = _ADAPTER or TypeAdapter(DesiredFile)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as error:
        # A value already reported (say, an unset variable) needs no second message.
        reported = {(line, column) for line, column, _ in problems.items}
        for item in error.errors(include_url=False, include_context=True):
            loc = item["loc"]
            node = _locate(root, loc, want_key=item["type"] == "extra_forbidden")
            if (node.start_mark.line + 1, node.start_mark.column + 1) not in reported:
                problems.node(node, f"{_dotted(loc)}: {_message(item, loc)}")
        return None


def _locate(root: yaml.Node, loc: Sequence[int | str], want_key: bool = False) -> yaml.Node:
    """The node a pydantic error location points at (the key node if `want_key`)."""
    node = root
    last = len(loc) - 1
    for position, part in enumerate(loc):
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        elif isinstance(node, yaml.MappingNode):
            pair = _find_pair(node, part)
            if pair is None:
                continue  # a union tag such as 'twilio', or a missing key: stay on the parent
            node = pair[0] if want_key and position == last else pair[1]
    return node


def _find_pair(node: yaml.MappingNode, key: object) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes for `key`, looking into `<<` merge sources too."""
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            merged += (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
        elif key_node.value == key:
            return key_node, value_node
    for source in merged:
        if isinstance(source, yaml.MappingNode):
            found = _find_pair(source, key)
            if found is not None:
                return found
    return None


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (
            position >= 2 and loc[position - 1] != "trunk_config" and part in ("twilio", "exotel")
        ):
            text += f".{part}" if text else part
    return text


def _message(item: Any, loc: Sequence[int | str]) -> str:
    kind, field = item["type"], loc[-1] if loc else ""
    if kind == "missing":
        return f"missing required field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}{_did_you_mean(str(field), loc)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "trunk_type must be 'twilio' or 'exotel'"
    if kind == "literal_error" and field == "version":
        return "version must be 1 (the only format this trunksync reads)"
    if kind == "value_error":
        return str(item["msg"]).removeprefix("Value error, ")
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {_yaml_kind(item.get('input'))}; quote this value"
    return _generic_message(kind, item)


def _generic_message(kind: str, item: Any) -> str:
    ctx = item.get("ctx") or {}
    if kind == "too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else str(item["msg"])
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long" or (kind == "too_long" and isinstance(item.get("input"), str)):
        return f"must be at most {ctx.get('max_length')} characters"
    if kind in ("greater_than_equal", "less_than_equal", "int_type", "int_parsing"):
        return "must be a whole number from 1 to 65535"
    if kind in ("list_type", "model_type", "dict_type", "model_attributes_type"):
        expected = "a list" if kind == "list_type" else "a mapping"
        return f"expected {expected}, got {_yaml_kind(item.get('input'))}"
    return str(item["msg"])


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean (yes/no/true/false)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a number" if isinstance(value, (int, float)) else "text"


def _did_you_mean(field: str, loc: Sequence[int | str]) -> str:
    # pydantic puts the union tag (the trunk_type) at position 2: ('trunks', 0, 'exotel', ...).
    tagged = len(loc) > 2 and loc[2] in ("twilio", "exotel")
    depth = len(loc) - (1 if tagged else 0)
    level = "file" if depth == 1 else "trunk" if depth == 3 else str(loc[2])
    return did_you_mean(field, FIELDS_BY_LEVEL.get(level, ()))


def _check_duplicate_names(root: yaml.Node, data: Any, problems: _Problems) -> None:
    """Names compared after ${VAR} substitution, each located at its YAML node."""
    trunks_node = _find_pair(root, "trunks") if isinstance(root, yaml.MappingNode) else None
    entries = data.get("trunks") if isinstance(data, dict) else None
    if trunks_node is None or not isinstance(trunks_node[1], yaml.SequenceNode):
        return
    if not isinstance(entries, list):
        return
    first_seen: dict[str, yaml.Node] = {}
    for entry_node, entry in zip(trunks_node[1].value, entries, strict=False):
        name_node = _name_node(entry_node)
        name = entry.get("trunk_name") if isinstance(entry, dict) else None
        if name_node is None or not isinstance(name, str):
            continue
        first = first_seen.setdefault(name, name_node)
        if first is not name_node:
            problems.node(
                name_node,
                f"duplicate trunk_name {name!r} (first used at "
                f"{problems.path}:{first.start_mark.line + 1}:{first.start_mark.column + 1})",
            )


def _name_node(entry: yaml.Node) -> yaml.ScalarNode | None:
    if not isinstance(entry, yaml.MappingNode):
        return None
    for key, value in entry.value:
        if key.value == "trunk_name" and isinstance(value, yaml.ScalarNode):
            return value
    return None


def _to_desired(trunk: Any, root: yaml.Node, index: int) -> DesiredTrunk:
    config = trunk.trunk_config
    public = {k: v for k, v in config.__dict__.items() if v is not None and k not in SECRET_FIELDS}
    secrets = {k: v for k, v in config.__dict__.items() if k in SECRET_FIELDS}
    node = _locate(root, ("trunks", index))
    return DesiredTrunk(
        trunk.trunk_name, trunk.trunk_type, public, secrets, node.start_mark.line + 1
    )
