"""``omnipipe train --spec S --stage NAME``: run one training stage (one DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.errors import SpecError
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.suggest import did_you_mean


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="run one training stage of a spec")
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument("--stage", required=True, help="a key of train.stages, e.g. image_pretrain")
    parser.add_argument("--resume", action="store_true", help="continue from the stage's last checkpoint, if any")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.train.trainer import train_stage

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    if args.stage not in spec.train.stages:
        raise SpecError(
            f"{args.spec}: no stage '{args.stage}' in train.stages ({', '.join(spec.train.stages)})"
            + did_you_mean(args.stage, spec.train.stages)
        )
    train_stage(spec, args.stage, registry, resume=args.resume, num_workers=args.num_workers)
    return 0
