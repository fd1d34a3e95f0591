"""``omnipipe weights``: which pretrained files the losses and metrics need, where they go, which are present."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="list the pretrained weights files, where they go, which are present")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.weights import format_table, inventory

    print(format_table(inventory()))
    return 0
