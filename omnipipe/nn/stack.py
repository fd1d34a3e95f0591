"""Encoder and decoder stacks: spatial blocks then temporal ones (the decoder runs temporal first)."""
from __future__ import annotations

import torch
from torch import nn

from omnipipe.nn.block import Block
from omnipipe.nn.norm import make_norm
from omnipipe.nn.stream_state import StackState
from omnipipe.registry import Registry
from omnipipe.spec.model import StackSpec


def init_weights(module: nn.Module) -> None:
    """Explicit init: truncated-normal (std 0.02) linear weights, zero biases, unit norms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.RMSNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


class Stack(nn.Module):
    """The blocks of a StackSpec, in order spatial → temporal (``temporal_first`` for the decoder), then a norm.

    With ``final_norm: per_group`` the first group (spatial, or temporal for the decoder) ends with its
    own norm too, as in the released OmniTokenizer's two transformers.
    """

    def __init__(self, spec: StackSpec, registry: Registry, temporal_first: bool = False) -> None:
        super().__init__()
        first, second = (spec.temporal, spec.spatial) if temporal_first else (spec.spatial, spec.temporal)
        entries = [*first, *second]
        self.blocks = nn.ModuleList(
            Block(
                registry.build("attention", entry, dim=spec.width, num_heads=spec.num_heads),
                spec.width,
                spec.mlp,
                spec.mlp_ratio,
                spec.norm,
                spec.dropout,
                mlp_norm=spec.mlp_norm,
                norm_eps=spec.norm_eps,
                mlp_bias=spec.mlp_bias,
                mlp_hidden=spec.mlp_hidden,
            )
            for entry in entries
        )
        per_group = spec.final_norm == "per_group" and len(first) > 0 and len(second) > 0
        self.first_group_size = len(first) if per_group else 0
        self.group_norm = make_norm(spec.norm, spec.width, spec.norm_eps) if per_group else None
        self.norm = make_norm(spec.norm, spec.width, spec.norm_eps)
        init_weights(self)

    def forward(self, x: torch.Tensor, state: StackState | None = None) -> torch.Tensor:
        """(B, T', H', W', width) → same shape; with ``state`` the frames continue a stream (``omnipipe.nn.streaming``)."""
        for i, block in enumerate(self.blocks):
            x = block(x) if state is None else block(x, state.blocks[i])
            if i + 1 == self.first_group_size:
                x = self.group_norm(x)
        return self.norm(x)
