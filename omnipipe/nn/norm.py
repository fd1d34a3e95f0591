"""Normalisation layers by spec name."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

NormKind = Literal["layernorm", "rmsnorm"]


class RMSNorm(nn.RMSNorm):
    """RMSNorm computed in at least fp32; autocast leaves rms_norm alone, unlike layer_norm which it upcasts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(torch.promote_types(x.dtype, self.weight.dtype)))


def make_norm(kind: NormKind, dim: int) -> nn.Module:
    """A ``layernorm`` or ``rmsnorm`` over the last dimension (affine, eps 1e-6)."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=1e-6)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=1e-6)
    raise ValueError(f"unknown norm '{kind}' (known: layernorm, rmsnorm)")
