"""DiT's parts: timestep embedding, adaLN-Zero transformer blocks (full or Latte's spatial/temporal), final layer.

A block is conditioned on ``c`` (B, T', D) — one vector per latent frame (timestep + class), so given
frames of a clip can sit at noise level 0 while the others are noisy. adaLN-Zero (Peebles & Xie 2023):

    shift₁, scale₁, gate₁, shift₂, scale₂, gate₂ = Linear(SiLU(c))        zero-initialised
    x ← x + gate₁ · Attention(LN(x)·(1 + scale₁) + shift₁)
    x ← x + gate₂ · MLP(LN(x)·(1 + scale₂) + shift₂)

so a fresh block is exactly the identity. Attention is ``SelfAttention`` of the token transformer
(3-D RoPE on each token's (t, h, w) patch position) over all tokens of a sample (``full``), the tokens
of one latent frame (``spatial``) or one patch position across frames (``temporal``, as in Latte).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from omnipipe.generate.transformer import SelfAttention
from omnipipe.nn.mlp import Mlp

AttentionScope = Literal["full", "spatial", "temporal"]


def timestep_features(time: torch.Tensor, channels: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features (…, channels) of noise levels ``time`` (…) in [0, 1], scaled to DiT's 0 … 1000."""
    half = channels // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=time.device) / half)
    angles = 1000.0 * time.float()[..., None] * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TimestepEmbedding(nn.Module):
    """Noise levels (…) → (…, D): sinusoidal features then a two-layer SiLU MLP."""

    def __init__(self, dim: int, channels: int = 256) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, time: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_features(time, self.channels))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x`` (B, T', S, D) · (1 + scale) + shift with per-frame ``shift``/``scale`` (B, T', D)."""
    return x * (1 + scale[:, :, None]) + shift[:, :, None]


class AdaLNZeroBlock(nn.Module):
    """One DiT block attending over ``scope``; identity at initialisation (its modulation starts at zero)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float, scope: AttentionScope) -> None:
        super().__init__()
        self.scope = scope
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio, "gelu", dropout)
        self.drop = nn.Dropout(dropout)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def zero_modulation(self) -> None:
        """adaLN-Zero: every shift, scale and gate starts at 0, so the block starts as the identity."""
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def attend(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Attention of (B, T', S, D) tokens within this block's scope; ``angles`` (T', S, hd/2)."""
        b, t, s, d = x.shape
        if self.scope == "full":
            return self.attn(x.reshape(b, t * s, d), angles.reshape(t * s, -1), causal=False).reshape(b, t, s, d)
        if self.scope == "spatial":  # each frame alone; the t-rotation is the same for all its tokens
            return self.attn(x.reshape(b * t, s, d), angles[0], causal=False).reshape(b, t, s, d)
        across = x.transpose(1, 2).reshape(b * s, t, d)  # (B·S, T', D): one patch position over frames
        return self.attn(across, angles[:, 0], causal=False).reshape(b, s, t, d).transpose(1, 2)

    def forward(self, x: torch.Tensor, c: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T', S, D), per-frame conditioning ``c`` (B, T', D) → (B, T', S, D)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=-1)  # (B, T', D) each
        x = x + gate1[:, :, None] * self.drop(self.attend(modulate(self.norm1(x), shift1, scale1), angles))
        return x + gate2[:, :, None] * self.drop(self.mlp(modulate(self.norm2(x), shift2, scale2)))


class FinalLayer(nn.Module):
    """LN modulated by ``c`` then a linear map to each patch's outputs; both zero-initialised (output 0 at start)."""

    def __init__(self, dim: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_features)

    def zero_init(self) -> None:
        for layer in (self.modulation[1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, T', S, D), (B, T', D) → (B, T', S, out_features)."""
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))
