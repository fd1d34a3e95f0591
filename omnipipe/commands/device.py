"""The ``--device`` option: checked before any work, so a missing GPU is one line, not a traceback."""
from __future__ import annotations

import argparse

import torch

from omnipipe.errors import OmnipipeError


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N or mps")


def checked_device(text: str) -> str:
    """``text`` when this machine has that torch device, else OmnipipeError saying what is there."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise OmnipipeError(f"--device {text}: not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OmnipipeError(f"--device {text}: no CUDA GPU is available on this machine; use --device cpu")
        if device.index is not None and device.index >= count:
            raise OmnipipeError(f"--device {text}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} (cuda:0…)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise OmnipipeError(f"--device {text}: Apple MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise OmnipipeError(f"--device {text}: omnipipe runs on cpu, cuda or mps")
    return text
