"""``omnipipe schema``: the JSON Schema of a spec file, installed plugins' components included."""
from __future__ import annotations

import argparse
import json

from omnipipe.plugins import get_registry
from omnipipe.spec.schema import spec_json_schema


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of spec files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(spec_json_schema(get_registry()), indent=2))
    return 0
