"""Pre-norm residual transformer block around any registered attention kind."""
from __future__ import annotations

import torch
from torch import nn

from omnipipe.nn.mlp import Mlp, MlpKind
from omnipipe.nn.norm import NormKind, make_norm


class Block(nn.Module):
    """``x + drop(attn(norm(x)))`` then ``x + drop(mlp(norm(x)))`` on (B, T, H, W, D) tokens."""

    def __init__(
        self, attention: nn.Module, dim: int, mlp: MlpKind, mlp_ratio: float, norm: NormKind, dropout: float
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, dim)
        self.attn = attention
        self.norm2 = make_norm(norm, dim)
        self.mlp = Mlp(dim, mlp_ratio, mlp, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))
