"""Options shared by the training commands (``train``, ``train-generator``, ``train-vtok``)."""
from __future__ import annotations

import argparse


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile", action="store_true",
        help="train through torch.compile (inductor): 1.1-1.4x faster steps on CPU after a first call of 40-200 s per "
        "batch shape (benchmarks/compile.py), so for long runs; checkpoints resume with or without it",
    )  # fmt: skip
