"""``omnipipe evaluate --spec S``: metrics, baseline, pictures and videos of the trained tokenizers (a DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.device import checked_device
from omnipipe.errors import SpecError
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.suggest import did_you_mean


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate trained stages on the val split, next to a bicubic baseline")
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument(
        "--stage", help="evaluate this training stage only (default: evaluate.stages, else the last stage of each bottleneck)"
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.evaluate.run import EvaluationPaths, evaluate

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    if args.stage is not None and args.stage not in spec.train.stages:
        raise SpecError(
            f"{args.spec}: no stage '{args.stage}' in train.stages ({', '.join(spec.train.stages)})"
            + did_you_mean(args.stage, spec.train.stages)
        )
    evaluate(spec, registry, args.stage, checked_device(args.device))
    print(EvaluationPaths.of(spec).summary.read_text())
    return 0
