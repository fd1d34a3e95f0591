"""Spatial attention kinds: ``full`` (all tokens of a frame) and ``window`` (non-overlapping w×w windows)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.nn.attention import Attention
from omnipipe.nn.rope import spatial_angles


class _SpatialAttention(Attention):
    """Attention within each frame, positions by 2-D axial RoPE (head_dim must divide by 4)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads)
        if self.head_dim % 4:
            raise ValueError(f"spatial RoPE needs head_dim divisible by 4, got {self.head_dim}")

    def angles(self, t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        return spatial_angles(h, w, self.head_dim, device)[:, :, None]  # (H, W, 1, hd/2)


class FullAttention(_SpatialAttention):
    """Full spatial self-attention: every token of a frame attends to every token of that frame."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads)
        self.params = params

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, h, w = q.shape[:4]
        q, k, v = (rearrange(a, "b t h w n d -> (b t) n (h w) d") for a in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B·T, heads, H·W, hd)
        return rearrange(out, "(b t) n (h w) d -> b t h w n d", b=b, h=h)


class WindowAttention(_SpatialAttention):
    """Spatial self-attention inside non-overlapping w×w windows; ragged grids are padded and masked."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        window_size: int = Field(default=8, gt=0, description="window side w, in tokens")

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads)
        self.params = params

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
        pattern = "b t (y i) (x j) n d -> (b t y x) n (i j) d"
        q, k, v = (rearrange(a, pattern, i=ws, j=ws) for a in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B·T·windows, heads, w², hd)
        out = rearrange(out, "(b t y x) n (i j) d -> b t (y i) (x j) n d", b=b, t=t, y=(h + pad_h) // ws, i=ws)
        return out[:, :, :h, :w]
