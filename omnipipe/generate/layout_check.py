"""Token shards and the tokenizer that decodes them must agree on the layout: same segments, grids and vocabularies."""
from __future__ import annotations

from pathlib import Path

from omnipipe.generate.contract import TokenLayout, TokenLayoutError


def layout_mismatch(found: TokenLayout, expected: TokenLayout) -> str | None:
    """What differs between the shards' layout and the tokenizer's (classes aside), or None."""
    if found.kind != expected.kind:
        return f"{found.kind} in the shards, {expected.kind} from the tokenizer"
    if len(found.segments) != len(expected.segments):
        names = ([s.name for s in found.segments], [s.name for s in expected.segments])
        return f"segments {names[0]} in the shards, {names[1]} from the tokenizer"
    for ours, theirs in zip(found.segments, expected.segments):
        for field, label in (("grid", "grid"), ("vocab_size", "vocabulary"), ("channels", "channels"), ("time_offset", "frame offset")):
            if getattr(ours, field) != getattr(theirs, field):
                return (f"segment '{ours.name}': {label} {getattr(ours, field)} in the shards, "
                        f"{getattr(theirs, field)} from the tokenizer")  # fmt: skip
    return None


def check_layout(found: TokenLayout, expected: TokenLayout, index: Path, tokenizer: Path) -> None:
    """Raise TokenLayoutError (one line) when shards written under ``index`` cannot be decoded by ``tokenizer``."""
    problem = layout_mismatch(found, expected)
    if problem is not None:
        raise TokenLayoutError(f"{index}: the token shards do not match the tokenizer {tokenizer} ({problem}); "
                               "encode the tokens again")  # fmt: skip
