"""``omnipipe validate``: check spec files against the schema and the registered components."""
from __future__ import annotations

import argparse

from omnipipe.errors import SpecError
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="validate spec files")
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    failures = []
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as error:
            failures.append(str(error))
            continue
        stages = len(spec.train.stages)
        print(f"{path}: ok ({spec.name}: {stages} training stage{'' if stages == 1 else 's'})")
    if failures:
        raise SpecError("\n".join(failures))
    return 0
