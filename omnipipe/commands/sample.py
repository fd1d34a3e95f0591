"""``omnipipe sample --spec S --generator NAME``: a trained generator's samples, tokens, grids and mp4s (a DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.generation_args import add_spec_arguments, entry_named
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sample", help="draw a trained generator's samples (fixed seed)")
    add_spec_arguments(parser, "generator", "a key of generate.generators")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.generate.paths import GenerationPaths
    from omnipipe.generate.sample import sample_generator

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    name = entry_named(args.spec, "generate.generators", spec.generate.generators, args.generator)
    summary = sample_generator(spec, name, registry, args.device)
    runs = ", ".join(f"{run} {info['samples']} ({info['seconds_per_sample']:.3g} s each)" for run, info in summary["runs"].items())
    print(f"generator '{name}': {runs} samples → {GenerationPaths.of(spec).samples(name)}")
    return 0
