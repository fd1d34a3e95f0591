"""The latent predictor: a small spatial transformer that turns the key frame's latents into a later
frame's, conditioned on that frame's residual token (added, through its own projection, before every block)."""
from __future__ import annotations

import torch
from torch import nn

from omnipipe.nn.stack import Stack, init_weights
from omnipipe.registry import Registry
from omnipipe.spec.model import StackSpec


class ConditionedStack(Stack):
    """A ``Stack`` whose blocks each see ``x + W_k c`` for a conditioning vector ``c``."""

    def __init__(self, spec: StackSpec, registry: Registry, cond_dim: int) -> None:
        super().__init__(spec, registry)
        self.shifts = nn.ModuleList(nn.Linear(cond_dim, spec.width) for _ in self.blocks)
        init_weights(self.shifts)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (N, T, H, W, width), cond (N, cond_dim) → (N, T, H, W, width)."""
        for block, shift in zip(self.blocks, self.shifts):
            x = block(x + shift(cond)[:, None, None, None])
        return self.norm(x)


class LatentPredictor(nn.Module):
    """Key-frame latents (N, 1, H', W', D) and residual tokens (N, R) → latents (N, 1, H', W', D)."""

    def __init__(self, spec: StackSpec, registry: Registry, latent_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(latent_dim, spec.width)
        self.stack = ConditionedStack(spec, registry, cond_dim)
        self.proj_out = nn.Linear(spec.width, latent_dim)
        for linear in (self.proj_in, self.proj_out):
            init_weights(linear)

    def forward(self, key: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.stack(self.proj_in(key), residual))
