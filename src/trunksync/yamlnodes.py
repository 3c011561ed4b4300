"""Turn a YAML node tree (composed by libyaml) into plain Python values.

Why not yaml.load: we need (1) line numbers for every error, (2) duplicate
mapping keys refused where PyYAML silently keeps the last one, and (3) the exact
text of plain scalars that YAML 1.1 reads as numbers (`+918044319240`, `0123`),
so a phone number is never silently changed. Composing is done in C by
CSafeLoader; this walk is the only Python pass over the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from trunksync.trunk_types.fields import YamlNumber

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
MERGE = "tag:yaml.org,2002:merge"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
BOOL_VALUES = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}

# Anchors and aliases can expand a small file enormously ("billion laughs"), and
# every value costs memory here and again in validation: the walk stops at these.
# 10,000 trunks are about 160,000 values, each shared default (`<<: *defaults`)
# adds a few per trunk; the caps leave room for several times that.
MAX_VALUES = 1_000_000
MAX_ALIAS_VALUES = 250_000  # values produced by walking an anchor again through an alias
MAX_DEPTH = 64  # trunks.yaml is 5 levels deep; a deeper document is not a trunk file

Problem = Callable[[yaml.Node, str], None]
StringHook = Callable[[yaml.ScalarNode, str | None], Any]


class LoadLimit(Exception):
    """The document exceeds a cap; `node` is where the walk was when it did."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class NodeWalker:
    """Convert nodes to values, reporting problems instead of raising.

    Raises LoadLimit when a cap is exceeded (the walk cannot usefully go on).
    `secret_keys` are the mapping keys whose values are secrets: always text.
    """

    def __init__(
        self, report: Problem, on_string: StringHook, secret_keys: frozenset[str] = frozenset()
    ) -> None:
        self._report = report
        self._on_string = on_string
        self._secret_keys = secret_keys
        self._visited = 0
        self._expanded = 0
        self._replaying = 0  # > 0 while walking a collection for the second time or more
        self._seen: set[int] = set()  # collections walked once (scalars are too many)
        self._active: set[int] = set()

    def value(self, node: yaml.Node, key: str | None = None) -> Any:
        self._count(node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, key)
        if id(node) in self._active:
            self._report(node, "an alias refers to itself (recursive structure)")
            return None
        if len(self._active) >= MAX_DEPTH:
            raise LoadLimit(node, f"the document is nested more than {MAX_DEPTH} levels deep")
        replay = id(node) in self._seen
        self._seen.add(id(node))
        self._active.add(id(node))
        self._replaying += replay
        try:
            if isinstance(node, yaml.SequenceNode) and node.tag == SEQ:
                return [self.value(item, key) for item in node.value]
            if isinstance(node, yaml.MappingNode) and node.tag == MAP:
                return self._mapping(node)
        finally:
            self._active.discard(id(node))
            self._replaying -= replay
        self._report(node, f"unsupported YAML tag {node.tag}")
        return None

    def _count(self, node: yaml.Node) -> None:
        self._visited += 1
        if self._visited > MAX_VALUES:
            raise LoadLimit(node, f"the document holds more than {MAX_VALUES:,} values")
        if self._replaying:
            self._expanded += 1
            if self._expanded > MAX_ALIAS_VALUES:
                raise LoadLimit(
                    node,
                    f"aliases (*name) expand to more than {MAX_ALIAS_VALUES:,} values; "
                    "the file is refused as an alias bomb",
                )

    def _scalar(self, node: yaml.ScalarNode, key: str | None) -> Any:
        tag, text = node.tag, node.value
        if tag in (STR, TIMESTAMP):
            return self._on_string(node, key)
        if tag in (INT, FLOAT):
            # A secret is text whatever it looks like; the hook also refuses it in plain text.
            return self._on_string(node, key) if key in self._secret_keys else YamlNumber(text)
        if tag == BOOL:
            if text.lower() not in BOOL_VALUES:
                self._report(node, f"{text!r} is not a boolean")
                return None
            return BOOL_VALUES[text.lower()]
        if tag == NULL:
            return None
        self._report(node, f"unsupported YAML tag {tag}")
        return None

    def _mapping(self, node: yaml.MappingNode) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: dict[str, yaml.Node] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                merged.update(self._merge_source(value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._report(key_node, "mapping keys must be plain strings")
                continue
            key = key_node.value
            if key in explicit:
                first = explicit[key].start_mark.line + 1
                self._report(key_node, f"duplicate key {key!r} (first defined on line {first})")
                continue
            explicit[key] = key_node
            result[key] = self.value(value_node, key)
        # Explicit keys win over merged ones, as in YAML's merge-key spec.
        return {**merged, **result}

    def _merge_source(self, node: yaml.Node) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.value(source)
            if isinstance(value, dict):
                merged.update(value)
            else:
                self._report(source, "a merge key (<<) needs a mapping or a list of mappings")
        return merged
