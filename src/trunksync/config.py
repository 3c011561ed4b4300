"""Load the desired-state file: YAML bytes -> validated, typed trunks.

All problems are collected and raised together as one ConfigError of Problem
values (`FILE:LINE:COL: message`), so a user fixes a file in one pass; the list
is bounded, and every message is escaped and scrubbed of resolved secrets.

Hostile files are bounded: the file size, the values an alias may expand to,
the number of values and the nesting depth all have caps (yamlnodes).
"""

from __future__ import annotations

import hashlib
import re
import secrets as random_tokens
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import yaml
from pydantic import SecretStr, TypeAdapter, ValidationError

from trunksync import trunk_types
from trunksync.collector import CollectorPause
from trunksync.errors import ConfigError, Problem, TrunksyncError, did_you_mean
from trunksync.models import desired_file_model, fields_by_level
from trunksync.sanitize import Scrubber, printable
from trunksync.yamlnodes import MERGE, LoadLimit, NodeWalker

REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
WHOLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", re.ASCII)
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
STDIN = "-"
STDIN_NAME = "<stdin>"
MAX_FILE_BYTES = 4 * 1024 * 1024  # 10,000 trunks are about 2 MB
MAX_KEPT_PROBLEMS = 1_000  # kept for machine output; str(ConfigError) shows fewer
MIN_SCRUBBED_SECRET = 4  # shorter values would blank ordinary words out of messages
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


class UnknownSecret(SecretStr):
    """A secret whose variable is unset or empty under --allow-missing-secrets.

    It can be planned with but never sent: revealing it raises.
    """

    def __init__(self, variable: str) -> None:
        super().__init__("")
        self.variable = variable

    def get_secret_value(self) -> str:
        raise TrunksyncError(
            f"the secret from ${{{self.variable}}} is unknown (--allow-missing-secrets): "
            "set the variable to apply"
        )

    def __repr__(self) -> str:
        return f"UnknownSecret({self.variable!r})"

    def __str__(self) -> str:
        return "(unknown)"

    # SecretStr compares and hashes the revealed value, which an unknown one has not.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnknownSecret) and other.variable == self.variable

    def __hash__(self) -> int:
        return hash(("UnknownSecret", self.variable))


class DesiredTrunk(NamedTuple):
    """One trunk as the file asks for it; secrets stay wrapped in SecretStr."""

    name: str
    trunk_type: str
    config: dict[str, Any]
    secrets: dict[str, SecretStr]
    line: int
    unknown_secrets: frozenset[str] = frozenset()  # fields holding an UnknownSecret

    def request_body(self) -> dict[str, Any]:
        """The JSON body of the create call (the only place secrets are revealed)."""
        if self.unknown_secrets:
            raise TrunksyncError(
                f"trunk {printable(self.name)!r}: {', '.join(sorted(self.unknown_secrets))} "
                "unknown (--allow-missing-secrets); a plan without secrets cannot be applied"
            )
        revealed = {field: secret.get_secret_value() for field, secret in self.secrets.items()}
        return {
            "trunk_name": self.name,
            "trunk_type": self.trunk_type,
            "trunk_config": {**self.config, **revealed},
        }


class Desired(NamedTuple):
    path: str  # the display name: the path as given, or "<stdin>"
    trunks: tuple[DesiredTrunk, ...]
    digest: str = ""  # "sha256:<hex>" of the exact bytes parsed
    secrets_unchecked: bool = False  # some secret is unknown (--allow-missing-secrets)

    def secret_values(self) -> list[str]:
        """Every resolved secret value of the file, for scrubbing messages."""
        return [
            secret.get_secret_value()
            for trunk in self.trunks
            for field, secret in trunk.secrets.items()
            if field not in trunk.unknown_secrets
        ]


class _Problems:
    """Collects problems, sortable by position; keeps a bounded number, counts the rest."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: set[tuple[int, int, str]] = set()
        self.items: list[tuple[int, int, str]] = []
        self.omitted = 0

    def at(self, mark: yaml.Mark | None, message: str) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        item = (line, column, message)
        # A value shared through an anchor is walked once per use: report it once.
        if item in self._seen:
            return
        self._seen.add(item)
        if len(self.items) < MAX_KEPT_PROBLEMS:
            self.items.append(item)
        else:
            self.omitted += 1

    def node(self, node: yaml.Node, message: str) -> None:
        self.at(node.start_mark, message)

    def positions(self) -> set[tuple[int, int]]:
        return {(line, column) for line, column, _ in self._seen}

    def raise_if_any(self, scrubber: Scrubber | None = None) -> None:
        if self.items or self.omitted:
            clean = scrubber.scrub if scrubber else _same
            raise ConfigError(
                [
                    Problem(self.path, ln, col, printable(clean(msg)))
                    for ln, col, msg in sorted(self.items)
                ],
                self.omitted,
            )


def _same(text: str) -> str:
    return text


def load_desired(
    path: str | Path,
    env: Mapping[str, str],
    allow_plaintext_secrets: bool = False,
    *,
    allow_missing_secrets: bool = False,
    stdin: BinaryIO | None = None,
) -> Desired:
    """Read, interpolate and validate the desired-state file at `path` ("-": stdin)."""
    display, data = _read(path, stdin)
    with CollectorPause():  # the nodes and values hold no cycles (see collector.py)
        return _load_desired(display, data, env, allow_plaintext_secrets, allow_missing_secrets)


def _read(path: str | Path, stdin: BinaryIO | None) -> tuple[str, bytes]:
    """The display name and the bytes, at most MAX_FILE_BYTES of them."""
    if str(path) == STDIN:
        source = stdin if stdin is not None else sys.stdin.buffer
        return STDIN_NAME, _bounded_read(STDIN_NAME, source)
    display = str(path)
    try:
        with open(path, "rb") as file:
            return display, _bounded_read(display, file)
    except FileNotFoundError:
        message = "file not found (pass -f FILE to choose another)"
    except IsADirectoryError:
        message = "is a folder, not a file"
    except OSError as error:
        message = f"cannot read: {error.strerror}"
    raise ConfigError([Problem(printable(display), None, None, message)])


def _bounded_read(display: str, source: BinaryIO) -> bytes:
    data = source.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            [
                Problem(
                    printable(display),
                    None,
                    None,
                    f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, "
                    "the most trunksync reads",
                )
            ]
        )
    return data


def _load_desired(
    display: str, data: bytes, env: Mapping[str, str], allow_plain: bool, allow_missing: bool
) -> Desired:
    problems = _Problems(printable(display))
    root = _compose(data, problems)
    secret_keys = trunk_types.secret_field_names()
    interpolator = _Interpolator(env, problems, secret_keys, allow_plain, allow_missing)
    walker = NodeWalker(problems.node, interpolator, secret_keys)
    try:
        value = walker.value(root)
    except LoadLimit as limit:
        problems.node(limit.node, limit.message)
        problems.raise_if_any(interpolator.scrubber())
    except RecursionError:
        problems.node(root, "the document is nested too deeply")
        problems.raise_if_any(interpolator.scrubber())
    interpolator.check_secret_variables()
    scrubber = interpolator.scrubber()
    _check_top_level(root, value, problems)
    model = _validate(value, root, problems)
    _check_duplicate_names(root, value, data, problems)
    problems.raise_if_any(scrubber)
    assert model is not None  # validation problems were raised above
    trunks = tuple(
        _to_desired(trunk, root, i, interpolator.unknown_prefix)
        for i, trunk in enumerate(model.trunks)
    )
    return Desired(
        display,
        trunks,
        "sha256:" + hashlib.sha256(data).hexdigest(),
        any(trunk.unknown_secrets for trunk in trunks),
    )


def _compose(data: bytes, problems: _Problems) -> yaml.Node:
    try:
        root = yaml.compose(data, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as error:
        problems.at(error.problem_mark, f"invalid YAML: {error.problem}")
        problems.raise_if_any()
        raise  # unreachable: a problem was recorded
    except yaml.YAMLError as error:
        raise ConfigError(
            [Problem(problems.path, None, None, f"invalid YAML: {printable(str(error))}")]
        ) from None
    except RecursionError:
        raise ConfigError(
            [Problem(problems.path, None, None, "the document is nested too deeply")]
        ) from None
    if root is None:
        raise ConfigError(
            [Problem(problems.path, 1, 1, "the file is empty; expected 'version: 1' and 'trunks:'")]
        )
    return root


class _Use(NamedTuple):
    """One ${VAR} reference: which variable, where, in which field."""

    variable: str
    node: yaml.ScalarNode
    key: str | None
    in_secret: bool


class _Interpolator:
    """Replaces ${VAR} in string values and enforces the rules for secrets:

    - a secret field is exactly one ${VAR} (or plain text, when allowed);
    - a variable used in a secret field is used in no other field;
    - under allow_missing, an unset or empty secret variable becomes a marker that
      `_to_desired` turns into an UnknownSecret (the NUL and the per-load token mean
      no real value can be taken for one).
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        problems: _Problems,
        secret_keys: frozenset[str],
        allow_plain: bool,
        allow_missing: bool,
    ) -> None:
        self._environ = environ
        self._problems = problems
        self._secret_keys = secret_keys
        self._allow_plain = allow_plain
        self._allow_missing = allow_missing
        self.unknown_prefix = f"\x00unknown-secret-{random_tokens.token_hex(8)}:"
        self._uses: list[_Use] = []
        self._secret_values: set[str] = set()

    def __call__(self, node: yaml.ScalarNode, key: str | None) -> str:
        text: str = node.value
        if key in self._secret_keys:
            return self._secret(node, key, text)
        if "$" not in text:
            return text
        return REFERENCE.sub(lambda match: self._substitute(node, key, match), text)

    def _secret(self, node: yaml.ScalarNode, key: str, text: str) -> str:
        whole = WHOLE_REFERENCE.fullmatch(text)
        if whole is not None:
            return self._secret_variable(node, key, whole.group(1))
        if _has_reference(text):
            self._problems.node(
                node,
                f"{key} must be exactly one ${{VARIABLE}}, with nothing before or after it",
            )
            return ""
        if not self._allow_plain:
            self._problems.node(
                node,
                f"{key} is written in plain text; put it in an environment variable and write "
                f"'{key}: ${{VARIABLE}}' (or pass --allow-plaintext-secrets)",
            )
        plain = REFERENCE.sub(lambda match: "${" + match.group(2) + "}", text)
        self._secret_values.add(plain)
        return plain

    def _secret_variable(self, node: yaml.ScalarNode, key: str, name: str) -> str:
        self._uses.append(_Use(name, node, key, True))
        value = self._environ.get(name)
        if value:
            self._secret_values.add(value)
            return value
        if self._allow_missing:
            return self.unknown_prefix + name
        state = "is not set" if value is None else "is empty"
        hint = " (pass --allow-missing-secrets to validate or plan without it)"
        self._problems.node(node, f"environment variable {name} {state}{hint}")
        return ""

    def _substitute(self, node: yaml.ScalarNode, key: str | None, match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if not VARIABLE_NAME.fullmatch(name):
            self._problems.node(node, f"invalid variable reference ${{{printable(name)}}}")
            return ""
        self._uses.append(_Use(name, node, key, False))
        if name not in self._environ:
            self._problems.node(node, f"environment variable {name} is not set")
            return ""
        return self._environ[name]

    def check_secret_variables(self) -> None:
        """A variable that feeds a secret field may feed no other field: its value would
        be stored in the state and printed in plans and messages."""
        secret_variables = {use.variable for use in self._uses if use.in_secret}
        for use in self._uses:
            # An anchor under a top-level `x-` key (`x-token: &t ${TOKEN}`) is dropped
            # after the walk: only its uses through aliases count.
            anchor_only = use.key is not None and use.key.startswith("x-")
            if not use.in_secret and use.variable in secret_variables and not anchor_only:
                where = use.key if use.key is not None else "this value"
                self._problems.node(
                    use.node,
                    f"{where} uses ${{{use.variable}}}, which is used for a secret "
                    f"({', '.join(sorted(self._secret_keys))}); a secret variable may only "
                    "be used in secret fields",
                )

    def scrubber(self) -> Scrubber:
        return Scrubber(v for v in self._secret_values if len(v) >= MIN_SCRUBBED_SECRET)


def _has_reference(text: str) -> bool:
    return any(not match.group(1) for match in REFERENCE.finditer(text))


def _check_top_level(root: yaml.Node, data: Any, problems: _Problems) -> None:
    if not isinstance(data, dict):
        problems.node(root, "expected a mapping with 'version: 1' and 'trunks:'")
        problems.raise_if_any()
    # `x-` keys are free for YAML anchors shared between trunks, as in Compose files.
    for key in [key for key in data if isinstance(key, str) and key.startswith("x-")]:
        del data[key]


def _adapter() -> TypeAdapter[Any]:
    model = desired_file_model()
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    return adapter


def _validate(data: Any, root: yaml.Node, problems: _Problems) -> Any:
    try:
        return _adapter().validate_python(data)
    except ValidationError as error:
        # A value already reported (say, an unset variable) needs no second message.
        reported = problems.positions()
        for item in error.errors(include_url=False, include_context=True, include_input=True):
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
    return _find_pair_in(node, key, set())


def _find_pair_in(
    node: yaml.MappingNode, key: object, visiting: set[int]
) -> tuple[yaml.Node, yaml.Node] | None:
    visiting.add(id(node))
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            merged += (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
        elif key_node.value == key:
            return key_node, value_node
    for source in merged:
        if isinstance(source, yaml.MappingNode) and id(source) not in visiting:
            found = _find_pair_in(source, key, visiting)
            if found is not None:
                return found
    return None


def _dotted(loc: Sequence[int | str]) -> str:
    tags = set(trunk_types.names())
    text = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (position >= 2 and loc[position - 1] != "trunk_config" and part in tags):
            text += f".{part}" if text else part
    return text


def _message(item: Any, loc: Sequence[int | str]) -> str:
    kind, field = item["type"], loc[-1] if loc else ""
    if kind == "missing":
        return f"missing required field {field!r}"
    if kind == "extra_forbidden":
        return f"unknown field {printable(str(field))!r}{_did_you_mean(str(field), loc)}"
    if kind in ("union_tag_invalid", "union_tag_not_found", "literal_error") and (
        field == "trunk_type" or kind.startswith("union_tag")
    ):
        return f"trunk_type must be {_one_of(trunk_types.names())}"
    if kind == "value_error":
        return str(item["msg"]).removeprefix("Value error, ")
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {_yaml_kind(item.get('input'))}; quote this value"
    return _generic_message(kind, item)


def _one_of(names: Sequence[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


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
    levels = fields_by_level()
    tagged = len(loc) > 2 and loc[2] in trunk_types.names()
    depth = len(loc) - (1 if tagged else 0)
    level = "file" if depth == 1 else "trunk" if depth == 3 else str(loc[2])
    return did_you_mean(field, levels.get(level, ()))


# --- duplicate names, judged on the final value -------------------------------------------


def _check_duplicate_names(root: yaml.Node, data: Any, text: bytes, problems: _Problems) -> None:
    """Names compared after aliases, merge keys and ${VAR}, each duplicate at its own place.

    An entry repeated with `*anchor`, or a name shared with `trunk_name: *n`, is one
    node in the composed tree; such an entry is located where the sequence item was
    written, found again from the parser's events (only when there is a duplicate).
    """
    trunks_pair = _find_pair(root, "trunks") if isinstance(root, yaml.MappingNode) else None
    entries = data.get("trunks") if isinstance(data, dict) else None
    if trunks_pair is None or not isinstance(trunks_pair[1], yaml.SequenceNode):
        return
    if not isinstance(entries, list):
        return
    items = trunks_pair[1].value
    by_name: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        name = entry.get("trunk_name") if isinstance(entry, dict) else None
        if isinstance(name, str) and index < len(items):
            by_name.setdefault(str(name), []).append(index)
    groups = {name: indexes for name, indexes in by_name.items() if len(indexes) > 1}
    if not groups:
        return
    places = _entry_places(items, text, problems.path)
    for name, indexes in groups.items():
        first = indexes[0]
        for index in indexes[1:]:
            mark = places[index]
            problems.at(
                mark,
                f"duplicate trunk_name '{printable(name)}': trunks[{index}] has the name of "
                f"trunks[{first}] (first used at {_where(problems.path, places[first])}), "
                "after aliases, merge keys and ${VAR} are applied",
            )


def _where(path: str, mark: yaml.Mark) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _entry_places(items: list[yaml.Node], text: bytes, path: str) -> list[yaml.Mark]:
    """Where each trunks entry is, best first: its own trunk_name node, else the place
    the sequence item was written (an alias), else the entry node."""
    item_marks = _sequence_item_marks(text, "trunks")
    use_items = len(item_marks) == len(items)
    name_nodes = [_name_node(item) for item in items]
    entry_uses: dict[int, int] = {}
    name_uses: dict[int, int] = {}
    for item, name_node in zip(items, name_nodes, strict=True):
        entry_uses[id(item)] = entry_uses.get(id(item), 0) + 1
        if name_node is not None:
            name_uses[id(name_node)] = name_uses.get(id(name_node), 0) + 1
    places: list[yaml.Mark] = []
    for index, (item, name_node) in enumerate(zip(items, name_nodes, strict=True)):
        shared = entry_uses[id(item)] > 1 or name_node is None or name_uses[id(name_node)] > 1
        if not shared and name_node is not None:
            places.append(name_node.start_mark)
        else:
            places.append(item_marks[index] if use_items else item.start_mark)
    return places


def _name_node(entry: yaml.Node) -> yaml.Node | None:
    if not isinstance(entry, yaml.MappingNode):
        return None
    pair = _find_pair(entry, "trunk_name")
    return pair[1] if pair is not None else None


def _sequence_item_marks(text: bytes, top_key: str) -> list[Any]:
    """The start of each item of the top-level `top_key:` sequence, aliases included.

    The marks come from libyaml (its own Mark type, with the same line and column)."""
    marks: list[Any] = []
    # Per open collection: [is_mapping, next_is_key, value_is_top_key, is_the_sequence].
    stack: list[list[bool]] = []
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue  # stream and document events
        the_sequence = False
        if stack:
            parent = stack[-1]
            if parent[0] and parent[1]:  # a mapping key
                parent[1] = False
                parent[2] = (
                    len(stack) == 1 and isinstance(event, yaml.ScalarEvent)
                ) and event.value == top_key
            elif parent[0]:  # a mapping value
                parent[1] = True
                the_sequence = parent[2]
            elif parent[3] and event.start_mark is not None:
                marks.append(event.start_mark)
        if isinstance(event, yaml.MappingStartEvent):
            stack.append([True, True, False, False])
        elif isinstance(event, yaml.SequenceStartEvent):
            stack.append([False, False, False, the_sequence])
    return marks


def _to_desired(trunk: Any, root: yaml.Node, index: int, unknown_prefix: str) -> DesiredTrunk:
    config = trunk.trunk_config
    secret_fields = trunk_types.get(trunk.trunk_type).secret_fields
    public = {k: v for k, v in config.__dict__.items() if v is not None and k not in secret_fields}
    secrets: dict[str, SecretStr] = {}
    unknown: set[str] = set()
    for field in sorted(secret_fields):
        secret = config.__dict__.get(field)
        if secret is None:
            continue
        value = secret.get_secret_value()
        if value.startswith(unknown_prefix):
            secrets[field] = UnknownSecret(value.removeprefix(unknown_prefix))
            unknown.add(field)
        else:
            secrets[field] = secret
    node = _locate(root, ("trunks", index))
    return DesiredTrunk(
        trunk.trunk_name,
        trunk.trunk_type,
        public,
        secrets,
        node.start_mark.line + 1,
        frozenset(unknown),
    )
