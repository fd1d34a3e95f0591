"""``omnipipe train-generator --spec S --generator NAME``: train one generator through the shared loop (a DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.generation_args import add_spec_arguments, entry_named
from omnipipe.commands.training_args import add_compile_argument
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.train.precision import PRECISIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train-generator", help="train a generator of generate.generators")
    add_spec_arguments(parser, "generator", "a key of generate.generators")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint, if any")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: bf16 autocast on CUDA, fp32 on CPU")
    add_compile_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.generate.task import GeneratorTask, generator_loop_settings
    from omnipipe.train.loop import run_training

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    name = entry_named(args.spec, "generate.generators", spec.generate.generators, args.generator)
    settings = generator_loop_settings(spec, name, precision=args.precision, device=args.device, compile=args.compile)
    run_training(settings, lambda ctx: GeneratorTask(spec, name, registry, ctx), resume=args.resume)
    return 0
