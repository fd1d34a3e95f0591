"""``omnipipe train --spec S --stage NAME``: run one training stage (one DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.training_args import add_compile_argument
from omnipipe.errors import SpecError
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.suggest import did_you_mean
from omnipipe.train.precision import PRECISIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="run one training stage of a spec")
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument("--stage", required=True, help="a key of train.stages, e.g. image_pretrain")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--resume", action="store_true",
        help="continue from the stage's newest intact checkpoint (starts over if it was written by other settings, "
        "code or inputs)",
    )  # fmt: skip
    existing.add_argument("--restart", action="store_true", help="delete the stage's checkpoints and start over")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="autocast of the forward pass: auto = bf16 on CUDA, fp32 on CPU; fp16 adds loss scaling (default: auto)",
    )  # fmt: skip
    parser.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes (default: 0)")
    add_compile_argument(parser)
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
    train_stage(
        spec, args.stage, registry, resume=args.resume, restart=args.restart, num_workers=args.num_workers,
        precision=args.precision, device=args.device, compile=args.compile,
    )  # fmt: skip
    return 0
