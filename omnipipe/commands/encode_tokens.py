"""``omnipipe encode-tokens --spec S --dataset NAME``: a token dataset of ``generate.tokens`` (a DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.generation_args import add_spec_arguments, entry_named
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encode-tokens", help="encode prepared clips into a token dataset (torchrun: one slice per rank)")
    add_spec_arguments(parser, "dataset", "a key of generate.tokens")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.generate.encode import encode_tokens

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    name = entry_named(args.spec, "generate.tokens", spec.generate.tokens, args.dataset)
    data = encode_tokens(spec, name, registry, device=args.device, progress=not args.no_progress)
    counts = ", ".join(f"{split} {len(rows)}" for split, rows in data.splits.items())
    print(f"token dataset '{name}': {counts} sequences of {data.layout.length} {data.layout.kind}, "
          f"{len(data.classes)} classes → {data.root}")  # fmt: skip
    return 0
