"""Multi-head self-attention on (B, T, H, W, D) token grids; each kind decides which tokens attend.

Every kind is built as ``cls(params, dim=width, num_heads=heads)``. By default position enters
through RoPE on q and k only (no additive bias, no convolutional positional encoding), so the SDPA
kernels see exactly what the reference maths says. ``AttentionOptions`` switch on the released
OmniTokenizer's variants, each on its own: bias-free projections, cosine attention with learned
per-channel q/k scales and a fixed logit scale, and a convolutional position encoding (PEG).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.nn.linear import Linear, linear
from omnipipe.nn.position_conv import ConvPositionEncoding, PegKind, PegOrder
from omnipipe.nn.rope import apply_rope
from omnipipe.nn.stream_state import ConvState


class AttentionOptions(BaseModel):
    """Params every builtin attention kind shares; the defaults are omnipipe's own design."""

    model_config = ConfigDict(extra="forbid")

    qkv_bias: bool = Field(default=True, description="bias on the q, k, v projection")
    proj_bias: bool = Field(default=True, description="bias on the output projection")
    qk_norm: Literal["none", "cosine"] = Field(
        default="none", description="cosine: l2-normalised q and k, each times a learned per-channel scale"
    )
    logit_scale: float | None = Field(
        default=None, gt=0, description="q·k is multiplied by this before the softmax; default 1/sqrt(head_dim)"
    )
    peg: PegKind = Field(
        default="none", description="depthwise 3×3×3 conv position encoding added before the block (causal in time or centered)"
    )
    kv_prenorm: bool = Field(
        default=True,
        description="false: k and v are projected from the block input before its pre-norm, only q from the "
        "normalised input (the released OmniTokenizer's full and temporal attention)",
    )


class Attention(nn.Module):
    """Shared projections; subclasses implement ``angles`` (RoPE) and ``attend`` (which tokens meet)."""

    def __init__(
        self, dim: int, num_heads: int, options: AttentionOptions | None = None, peg_order: PegOrder = "grid"
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}")
        options = AttentionOptions() if options is None else options
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.qkv = Linear(dim, 3 * dim, bias=options.qkv_bias)
        self.proj = Linear(dim, dim, bias=options.proj_bias)
        self.cosine = options.qk_norm == "cosine"
        if self.cosine:
            self.q_scale = nn.Parameter(torch.ones(self.head_dim))
            self.k_scale = nn.Parameter(torch.ones(self.head_dim))
        self.scale = options.logit_scale  # None: SDPA's 1/sqrt(head_dim)
        self.peg = None if options.peg == "none" else ConvPositionEncoding(dim, options.peg, peg_order)
        self.kv_from_block_input = not options.kv_prenorm  # the block then passes its raw input as ``kv_input``

    def encode_position(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """The block input with the conv position encoding added (unchanged without ``peg``); (B, T, H, W, D).

        ``state``: the frames continue a stream (see ``ConvPositionEncoding``).
        """
        return x if self.peg is None else x + self.peg(x, state)

    def angles(self, t: int, h: int, w: int, device: torch.device, start: int = 0) -> torch.Tensor | None:
        """RoPE angles broadcastable to (T, H, W, heads, head_dim // 2), or None for no rotation.

        ``start``: the index of the first of the ``t`` frames (frames after the first chunk of a stream).
        """
        raise NotImplementedError

    def rotate(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Apply RoPE ``angles`` to q or k (B, T, H, W, heads, head_dim); pairs (i, i + hd/2) by default."""
        return apply_rope(x, angles)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Mix (B, T, H, W, heads, head_dim) values; returns the same shape."""
        raise NotImplementedError

    def project(
        self, x: torch.Tensor, kv_input: torch.Tensor | None = None, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k (rotated, then cosine-normalised if set) and v, each (B, T, H, W, heads, head_dim).

        k and v come from ``kv_input`` (B, T, H, W, D) when given, q always from ``x``; ``start``: the
        index of the first frame (see ``angles``).
        """
        if kv_input is None:
            q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)
        else:
            weight, bias = self.qkv.weight, self.qkv.bias
            q = linear(x, weight[: self.dim], None if bias is None else bias[: self.dim])
            kv = linear(kv_input, weight[self.dim :], None if bias is None else bias[self.dim :])
            q = q.unflatten(-1, (self.num_heads, self.head_dim))
            k, v = kv.unflatten(-1, (2, self.num_heads, self.head_dim)).unbind(-3)
        angles = self.angles(*x.shape[1:4], device=x.device, start=start)
        if angles is not None:
            q, k = self.rotate(q, angles), self.rotate(k, angles)
        if self.cosine:
            q, k = F.normalize(q, dim=-1) * self.q_scale, F.normalize(k, dim=-1) * self.k_scale
        return q, k, v

    def forward(self, x: torch.Tensor, kv_input: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H, W, D) → (B, T, H, W, D); ``kv_input`` (same shape) feeds k and v instead of ``x``."""
        return self.proj(self.attend(*self.project(x, kv_input)).flatten(-2))
