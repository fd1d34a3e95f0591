"""``omnipipe compare-vtok --spec S --name NAME``: a trained VTok next to its plain tokenizer on the val clips."""
from __future__ import annotations

import argparse

from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare-vtok", help="measure a VTok tokenizer against its plain tokenizer")
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument("--name", required=True, help="a key of the spec's vtok section")
    parser.add_argument("--device", default="cpu", help="e.g. cpu, cuda")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.commands.train_vtok import vtok_entry_name
    from omnipipe.vtok.compare import ComparePaths, compare_vtok

    registry = get_registry()
    spec = load_spec(args.spec, registry)
    results = compare_vtok(spec, vtok_entry_name(spec, args.spec, args.name), registry, args.device)
    later = {v: results[v].get("psnr", float("nan")) for v in ("vtok", "plain", "key_held")}
    print(f"{results['clips']} val clips; later-frame PSNR vtok {later['vtok']:.2f} / plain {later['plain']:.2f} / "
          f"key held {later['key_held']:.2f} dB → {ComparePaths.of(spec, args.name).root}")  # fmt: skip
    return 0
