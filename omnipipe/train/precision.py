"""Mixed precision: which autocast a run uses, and the gradient scaler fp16 needs."""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Literal, get_args

import torch

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: Precision, device: torch.device) -> Precision:
    """``auto`` is bf16 autocast on CUDA and fp32 elsewhere; the others stand as given."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(precision: Precision, device: torch.device) -> AbstractContextManager[object]:
    """The forward pass's autocast for a resolved ``precision`` (no autocast for fp32)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def grad_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (whose small gradients underflow); a disabled, pass-through scaler otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
