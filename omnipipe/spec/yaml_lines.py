"""Line numbers of the keys in a YAML document, so spec errors can point at a line."""
from __future__ import annotations

import yaml

from omnipipe.spec.problems import Loc


def key_lines(text: str) -> dict[Loc, int]:
    """Map each path (keys and list indices) to the 1-based line where it is written."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Loc, int] = {}

    def visit(node: yaml.Node, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*loc, key_node.value)
                lines[child] = key_node.start_mark.line + 1
                visit(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*loc, index)
                lines[child] = item.start_mark.line + 1
                visit(item, child)

    if root is not None:
        visit(root, ())
    return lines


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, or of its nearest written ancestor (a missing key points at its parent)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
