"""Normalisation layers by spec name."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

NormKind = Literal["layernorm", "layernorm_nobias", "rmsnorm"]


class RMSNorm(nn.RMSNorm):
    """RMSNorm computed in at least fp32; autocast leaves rms_norm alone, unlike layer_norm which it upcasts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(torch.promote_types(x.dtype, self.weight.dtype)))


def make_norm(kind: NormKind, dim: int, eps: float = 1e-6) -> nn.Module:
    """A norm over the last dimension: ``layernorm`` (affine), ``layernorm_nobias`` (learned scale, β fixed at 0), ``rmsnorm``."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "layernorm_nobias":
        return nn.LayerNorm(dim, eps=eps, bias=False)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps)
    raise ValueError(f"unknown norm '{kind}' (known: layernorm, layernorm_nobias, rmsnorm)")
