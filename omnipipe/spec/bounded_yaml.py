"""YAML from users, read within bounds checked before anything is built: document size, nesting depth,
nodes after alias expansion (an alias bomb), duplicate keys. Safe tags only (``SafeLoader``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from omnipipe.spec.problems import Loc

MAX_BYTES = 1 << 20  # a spec is a few KB; a 50 MB document would take minutes to parse
MAX_DEPTH = 64
MAX_NODES = 100_000  # counted with every alias expanded, as the data built from it would be
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: the same results, faster
MERGE_TAG = "tag:yaml.org,2002:merge"
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels, the limit for YAML files"


class YamlError(ValueError):
    """YAML that cannot be read or breaks a bound; ``line`` (1-based) when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def at(self, source: str) -> str:
        """``source:line:column: message`` (as much of the place as is known)."""
        place = "".join(f":{n}" for n in (self.line, self.column) if n is not None) if self.line else ""
        return f"{source}{place}: {self}"


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    lines: dict[Loc, int]  # each key path and list index → the line it is written on


def read_yaml(text: str) -> YamlDocument:
    """The data of one YAML document and the line of every key; raises YamlError."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise YamlError(f"{size:,} bytes, more than the {MAX_BYTES:,}-byte limit for YAML files")
    try:
        _check_shape(text)
        loader = Loader(text)
        try:
            root = loader.get_single_node()
            _check_duplicate_keys(root)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        line, column = (None, None) if mark is None else (mark.line + 1, mark.column + 1)
        if "maximum nesting depth" in problem:  # libyaml's own bound (1000) met before ours
            raise YamlError(TOO_DEEP, line) from None
        raise YamlError(f"invalid YAML: {problem}", line, column) from None
    return YamlDocument(data, _key_lines(root))


def _check_shape(text: str) -> None:
    """Depth and expanded size from the event stream (no recursion, nothing built yet)."""
    sizes: dict[str, int] = {}  # anchor → nodes of its value, aliases inside it expanded
    open_collections: list[list[Any]] = []  # [anchor, nodes so far]
    expanded = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
            nodes = sizes.get(event.anchor, 1) if isinstance(event, yaml.AliasEvent) else 1
            expanded += nodes
            if expanded > MAX_NODES:
                raise YamlError(
                    f"more than {MAX_NODES:,} values once aliases are expanded, the limit for YAML files "
                    "(an alias bomb?)",
                    event.start_mark.line + 1,
                )
            if open_collections:
                open_collections[-1][1] += nodes  # a collection adds its own node here, its items when it ends
            if isinstance(event, yaml.ScalarEvent) and event.anchor:
                sizes[event.anchor] = 1
            if isinstance(event, yaml.CollectionStartEvent):
                open_collections.append([event.anchor, 0])
                if len(open_collections) > MAX_DEPTH:
                    raise YamlError(TOO_DEEP, event.start_mark.line + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes = open_collections.pop()
            if open_collections:
                open_collections[-1][1] += nodes
            if anchor:
                sizes[anchor] = 1 + nodes


def _check_duplicate_keys(root: yaml.Node | None) -> None:
    """A key written twice in one mapping: YAML keeps the last value silently, so it is an error here."""
    pending, seen = [root], set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG:
                    if key.value in first:
                        raise YamlError(
                            f"duplicate key '{key.value}' (first at line {first[key.value]}): "
                            "YAML would silently keep the last value",
                            key.start_mark.line + 1,
                        )
                    first[key.value] = key.start_mark.line + 1
                pending += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            pending += node.value


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of its nearest written ancestor (a missing key points at its parent)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _key_lines(root: yaml.Node | None) -> dict[Loc, int]:
    lines: dict[Loc, int] = {}
    pending: list[tuple[yaml.Node, Loc]] = [(root, ())] if root is not None else []
    while pending:
        node, loc = pending.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                child = (*loc, key.value)
                lines.setdefault(child, key.start_mark.line + 1)
                pending.append((value, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*loc, index)
                lines.setdefault(child, item.start_mark.line + 1)
                pending.append((item, child))
    return lines
