"""The ``omnipipe`` command line: one sub-command per module in ``omnipipe.commands``."""
from __future__ import annotations

import argparse
import sys
import traceback

from omnipipe.commands import components, evaluate, prepare, reconstruct, schema, tokenize, train, validate, weights
from omnipipe.commands import encode_tokens, evaluate_generator, sample, train_generator
from omnipipe.commands import compare_vtok, train_vtok
from omnipipe.errors import OmnipipeError

COMMANDS = (components, validate, schema, weights, prepare, train, evaluate, reconstruct, tokenize)
COMMANDS += (encode_tokens, train_generator, sample, evaluate_generator)
COMMANDS += (train_vtok, compare_vtok)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnipipe", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except OmnipipeError as error:
        if args.debug:
            traceback.print_exc()
        for line in str(error).splitlines():
            print(f"omnipipe: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnipipe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
