"""Options shared by the training commands (``train``, ``train-generator``, ``train-vtok``)."""
from __future__ import annotations

import argparse


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile", action="store_true",
        help="train through torch.compile (inductor): faster steps after a one-off compile of 10-60 s per batch shape; "
        "checkpoints resume with or without it",
    )  # fmt: skip
