"""The ``omnipipe`` command line: one sub-command per module in ``omnipipe.commands``."""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from omnipipe import __version__
from omnipipe.commands import (
    components, evaluate, import_reference, plots_template, prepare, reconstruct, schema, tokenize, train, validate,
    weights,
)  # fmt: skip
from omnipipe.commands import encode_tokens, evaluate_generator, sample, train_generator
from omnipipe.commands import compare_vtok, train_vtok
from omnipipe.errors import OmnipipeError

COMMANDS = (
    components, validate, schema, weights, prepare, train, evaluate, reconstruct, tokenize, import_reference,
    plots_template,
)  # fmt: skip
COMMANDS += (encode_tokens, train_generator, sample, evaluate_generator)
COMMANDS += (train_vtok, compare_vtok)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (when it has a meaningful one)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        shown = action.default not in (None, False, argparse.SUPPRESS) and not action.required
        return f"{action.help} (default: %(default)s)" if shown and action.help and "%(default)" not in action.help else action.help or ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnipipe", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"omnipipe {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    for subparser in subparsers.choices.values():
        subparser.formatter_class = DefaultsHelpFormatter
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
    except BrokenPipeError:  # the reader went away (``omnipipe schema | head``): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail
        return 141


if __name__ == "__main__":
    sys.exit(main())
