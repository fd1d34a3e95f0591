"""Multi-head self-attention on (B, T, H, W, D) token grids; each kind decides which tokens attend.

Every kind is built as ``cls(params, dim=width, num_heads=heads)``. Position enters through RoPE on
q and k only (no additive bias, no convolutional positional encoding), so the SDPA kernels see
exactly what the reference maths says.
"""
from __future__ import annotations

import torch
from torch import nn

from omnipipe.nn.rope import apply_rope


class Attention(nn.Module):
    """Shared projections; subclasses implement ``angles`` (RoPE) and ``attend`` (which tokens meet)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def angles(self, t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        """RoPE angles broadcastable to (T, H, W, heads, head_dim // 2)."""
        raise NotImplementedError

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Mix (B, T, H, W, heads, head_dim) values; returns the same shape."""
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k (rotated) and v, each (B, T, H, W, heads, head_dim)."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        angles = self.angles(*x.shape[1:4], device=x.device)
        return apply_rope(q, angles), apply_rope(k, angles), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, D) → (B, T, H, W, D)."""
        return self.proj(self.attend(*self.project(x)).flatten(-2))
