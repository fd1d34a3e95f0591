"""Feed-forward layers: plain GELU or gated (GEGLU, SwiGLU)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from omnipipe.nn.gated_linear import gated_linear
from omnipipe.nn.linear import Linear

MlpKind = Literal["swiglu", "geglu", "gelu"]


class Mlp(nn.Module):
    """``dim → hidden → dim``; gated kinds use hidden = 2/3 · ratio · dim so their size matches plain GELU.

    ``hidden`` overrides that width (e.g. the reference's ``int(ratio · 2/3 · dim)``); ``bias=False`` drops both biases.
    """

    def __init__(
        self, dim: int, ratio: float, kind: MlpKind, dropout: float = 0.0, bias: bool = True, hidden: int | None = None
    ) -> None:
        super().__init__()
        if kind not in ("swiglu", "geglu", "gelu"):
            raise ValueError(f"unknown mlp '{kind}' (known: swiglu, geglu, gelu)")
        self.kind = kind
        gated = kind != "gelu"
        if hidden is None:
            hidden = int(round(dim * ratio * (2 / 3 if gated else 1)))
        self.fc_in = Linear(dim, hidden * (2 if gated else 1), bias=bias)
        self.fc_out = Linear(hidden, dim, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "gelu":
            h = F.gelu(self.fc_in(x))
        else:
            h = gated_linear(x, self.fc_in.weight, self.fc_in.bias, "gelu" if self.kind == "geglu" else "silu")
        return self.fc_out(self.drop(h))
