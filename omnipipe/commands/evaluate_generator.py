"""``omnipipe evaluate-generator --spec S --generator NAME``: generation metrics of the samples (a DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.generation_args import add_spec_arguments, entry_named
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate-generator", help="generation metrics of a generator's samples")
    add_spec_arguments(parser, "generator", "a key of generate.generators")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.generate.evaluate import evaluate_generator
    from omnipipe.generate.paths import GenerationPaths

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    name = entry_named(args.spec, "generate.generators", spec.generate.generators, args.generator)
    evaluate_generator(spec, name, registry, args.device)
    print((GenerationPaths.of(spec).evaluation(name) / "summary.md").read_text(encoding="utf-8"))
    return 0
