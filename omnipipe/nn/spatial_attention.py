"""Spatial attention kinds: ``full`` (all tokens of a frame) and ``window`` (non-overlapping w×w windows)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field

from omnipipe.nn.attention import Attention, AttentionOptions
from omnipipe.nn.continuous_position_bias import ContinuousPositionBias
from omnipipe.nn.relative_position import RelativePositionBias
from omnipipe.nn.rope import apply_interleaved_rope, apply_rope, interleaved_spatial_angles, spatial_angles


class SpatialOptions(AttentionOptions):
    """Options of the spatial kinds: which 2-D RoPE, if any."""

    rope: Literal["axial", "interleaved", "none"] = Field(
        default="axial",
        description="2-D RoPE: axial (first half of the channel pairs by row, second by column), "
        "interleaved (adjacent pairs alternate column and row: the released OmniTokenizer's), or none",
    )


class _SpatialAttention(Attention):
    """Attention within each frame, positions by 2-D RoPE (head_dim must divide by 4) unless ``rope: none``."""

    def __init__(self, params: SpatialOptions, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads, params)
        self.params = params
        if params.rope != "none" and self.head_dim % 4:
            raise ValueError(f"spatial RoPE needs head_dim divisible by 4, got {self.head_dim}")

    per_frame = True  # frames never meet: a video can be encoded chunk by chunk without any cache

    def angles(self, t: int, h: int, w: int, device: torch.device, start: int = 0) -> torch.Tensor | None:
        if self.params.rope == "none":
            return None
        make = interleaved_spatial_angles if self.params.rope == "interleaved" else spatial_angles
        return make(h, w, self.head_dim, device)[:, :, None]  # (H, W, 1, hd/2)

    def rotate(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        return apply_interleaved_rope(x, angles) if self.params.rope == "interleaved" else apply_rope(x, angles)


class FullAttention(_SpatialAttention):
    """Full spatial self-attention: every token of a frame attends to every token of that frame."""

    class Params(SpatialOptions):
        position_bias: Literal["none", "continuous"] = Field(
            default="none",
            description="continuous: add a Swin-V2 MLP bias of each (row, column) offset (hidden width = model width)",
        )

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(params, dim, num_heads)
        self.position_bias = ContinuousPositionBias(num_heads, dim) if params.position_bias == "continuous" else None

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, h, w = q.shape[:4]
        bias = None if self.position_bias is None else self.position_bias(h, w, q.device).to(q.dtype)  # (heads, N, N)
        q, k, v = (rearrange(a, "b t h w n d -> (b t) n (h w) d") for a in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)  # (B·T, heads, H·W, hd)
        return rearrange(out, "(b t) n (h w) d -> b t h w n d", b=b, h=h)


class WindowAttention(_SpatialAttention):
    """Spatial self-attention inside non-overlapping w×w windows; ragged grids are padded and masked."""

    class Params(SpatialOptions):
        window_size: int = Field(default=8, gt=0, description="window side w, in tokens")
        relative_bias: bool = Field(
            default=False, description="add a learned Swin-style bias per head and (row, column) offset inside a window"
        )

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(params, dim, num_heads)
        self.relative_bias = RelativePositionBias(params.window_size, num_heads) if params.relative_bias else None

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ws = self.params.window_size
        b, t, h, w = q.shape[:4]
        pad_h, pad_w = -h % ws, -w % ws
        mask = None
        if pad_h or pad_w:
            q, k, v = (F.pad(a, (0, 0, 0, 0, 0, pad_w, 0, pad_h)) for a in (q, k, v))
            valid = F.pad(torch.ones(h, w, dtype=torch.bool, device=q.device), (0, pad_w, 0, pad_h))
            valid = rearrange(valid, "(y i) (x j) -> (y x) 1 1 (i j)", i=ws, j=ws)  # (windows, 1, 1, w²)
            mask = valid.expand(b * t, *valid.shape).flatten(0, 1)  # (B·T·windows, 1, 1, w²)
        if self.relative_bias is not None:
            bias = self.relative_bias().to(q.dtype)  # (heads, w², w²)
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        pattern = "b t (y i) (x j) n d -> (b t y x) n (i j) d"
        q, k, v = (rearrange(a, pattern, i=ws, j=ws) for a in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)  # (B·T·windows, heads, w², hd)
        out = rearrange(out, "(b t y x) n (i j) d -> b t (y i) (x j) n d", b=b, t=t, y=(h + pad_h) // ws, i=ws)
        return out[:, :, :h, :w]
