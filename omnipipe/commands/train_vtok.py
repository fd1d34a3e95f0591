"""``omnipipe train-vtok --spec S --name NAME``: train one VTok tokenizer of the spec's ``vtok`` section (one DVC stage)."""
from __future__ import annotations

import argparse

from omnipipe.commands.training_args import add_compile_argument
from omnipipe.errors import SpecError
from omnipipe.plugins import get_registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import load_spec
from omnipipe.suggest import did_you_mean


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train-vtok", help="train a VTok tokenizer (key frame + residual tokens)")
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument("--name", required=True, help="a key of the spec's vtok section")
    parser.add_argument("--resume", action="store_true", help="continue from the stage's last checkpoint, if any")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")
    add_compile_argument(parser)
    parser.set_defaults(handler=run)


def vtok_entry_name(spec: Experiment, source: str, name: str) -> str:
    """``name`` when the spec's ``vtok`` section has it, else one clear SpecError."""
    if name not in spec.vtok:
        known = ", ".join(spec.vtok) or "none"
        raise SpecError(f"{source}: no entry '{name}' in the vtok section (entries: {known})" + did_you_mean(name, spec.vtok))
    return name


def run(args: argparse.Namespace) -> int:
    from omnipipe.vtok.task import train_vtok

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    train_vtok(spec, vtok_entry_name(spec, args.spec, args.name), registry, resume=args.resume, num_workers=args.num_workers, compile=args.compile)
    return 0
