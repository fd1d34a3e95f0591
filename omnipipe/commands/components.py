"""``omnipipe components``: what is registered, by whom."""
from __future__ import annotations

import argparse

from omnipipe.plugins import get_registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("components", help="list registered components and their providers")
    parser.add_argument("--kind", help="only this kind (patchifier, attention, quantizer, loss, ...)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = [(e.kind, e.name, e.provider, e.doc) for e in registry.entries(args.kind)]
    header = ("kind", "name", "provider", "description")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
    return 0
