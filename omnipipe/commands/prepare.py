"""``omnipipe prepare``: decode the spec's sources into clip shards under ``data.prepared_dir`` (a DVC stage)."""
from __future__ import annotations

import argparse
import os

from omnipipe.data.prepare import prepare
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prepare", help="decode, cut, resize, split and shard the spec's data sources")
    parser.add_argument("--spec", required=True, help="the experiment spec file")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="decoding processes")
    parser.add_argument("--report", help="where to write the report (default: <prepared_dir>/prepare_report.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    result = prepare(spec.data, get_registry(), args.spec, args.workers, not args.no_progress, args.report)
    report = result.report
    splits = ", ".join(f"{split}: {c['image']} images, {c['video']} clips" for split, c in report["splits"].items())
    print(f"prepared {spec.data.prepared_dir} ({splits}; {len(report['skipped'])} skipped, "
          f"{report['bytes'] / 2**20:.1f} MiB, {result.resumed} of {report['units']} units reused, "
          f"{result.seconds:.1f} s)")  # fmt: skip
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0
