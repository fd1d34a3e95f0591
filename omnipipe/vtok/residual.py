"""The residual encoder: how a later frame's features differ from the key frame's, as one vector.

    d_i = F(x_t)_i − F(x_key)_i                     per latent position i of the (H', W') grid
    φ_i = GELU(W [d_i ; pos_i])                     position-aware, since a translation's difference
                                                    averages to ~0 without positions
    v   = mean_i φ_i   or   Σ_i softmax(q·k_i) φ_i  (``pooling``: mean, or one learned query per head)
    r   = MLP(v)                                    (B, U, residual_width)

A difference of zeros (no change) always gives the same vector, whatever the key frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omnipipe.nn.rope import spatial_angles
from omnipipe.nn.stack import init_weights
from omnipipe.spec.vtok import Pooling

POSITION_CHANNELS = 16  # sin and cos of 8 angles: 4 by row, 4 by column


def position_features(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Fixed 2-D sinusoidal features (H, W, POSITION_CHANNELS) of integer grid positions (any grid size)."""
    angles = spatial_angles(h, w, POSITION_CHANNELS, device).float()  # (H, W, 8)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualEncoder(nn.Module):
    """Feature differences (B, U, H', W', D) → residual vectors (B, U, width)."""

    def __init__(self, dim: int, width: int, pooling: Pooling, num_heads: int = 4) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"residual width {width} is not divisible by {num_heads} pooling heads")
        self.pooling, self.num_heads = pooling, num_heads
        self.embed = nn.Linear(dim + POSITION_CHANNELS, width)
        if pooling == "query":
            self.query = nn.Parameter(torch.zeros(num_heads, width // num_heads))
            self.key = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        init_weights(self)
        if pooling == "query":
            nn.init.trunc_normal_(self.query, std=0.02)

    def forward(self, difference: torch.Tensor) -> torch.Tensor:
        b, u, h, w, _ = difference.shape
        positions = position_features(h, w, difference.device).to(difference.dtype).expand(b, u, h, w, -1)
        tokens = F.gelu(self.embed(torch.cat([difference, positions], dim=-1))).flatten(2, 3)  # (B, U, H'·W', width)
        if self.pooling == "mean":
            pooled = tokens.mean(dim=2)  # (B, U, width)
        else:
            heads = tokens.unflatten(-1, (self.num_heads, -1)).transpose(2, 3)  # (B, U, heads, H'·W', hd)
            keys = self.key(tokens).unflatten(-1, (self.num_heads, -1)).transpose(2, 3)
            query = self.query[:, None].expand(b, u, -1, 1, -1).to(tokens.dtype)  # (B, U, heads, 1, hd)
            pooled = F.scaled_dot_product_attention(query, keys, heads).flatten(2)  # (B, U, width)
        return self.mlp(pooled)
