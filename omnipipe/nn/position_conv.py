"""Convolutional position encoding (PEG): a depthwise 3×3×3 convolution over the token grid.

Added as a residual before an attention block (``x + peg(x)``), it gives attention a sense of
position without any table, at any grid size. ``causal`` pads two frames before and none after,
so a frame never sees later ones (an image, T' = 1, then sees only itself).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

PegKind = Literal["none", "causal", "centered"]
PegOrder = Literal["grid", "reference_temporal"]


class ConvPositionEncoding(nn.Module):
    """Depthwise 3×3×3 conv (with bias) on (B, T, H, W, D) tokens; returns the encoding, not ``x`` + it.

    ``order="reference_temporal"`` reproduces the released OmniTokenizer's temporal blocks, which read
    their tokens, stored per spatial position as (B, H, W, T), as if they were laid out (B, T, H, W):
    the convolution then runs on that scrambled grid and its output is read back the same way. It
    matters only for T' > 1; checkpoints trained that way need it to give their outputs.
    """

    def __init__(self, dim: int, kind: Literal["causal", "centered"], order: PegOrder = "grid") -> None:
        super().__init__()
        self.kind, self.order = kind, order
        self.conv = nn.Conv3d(dim, dim, kernel_size=3, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, D) → (B, T, H, W, D)."""
        b, t, h, w, d = x.shape
        if self.order == "reference_temporal":
            x = x.permute(0, 2, 3, 1, 4).reshape(b, t, h, w, d)  # (B, H, W, T) memory read as (B, T, H, W)
        time_pad = (2, 0) if self.kind == "causal" else (1, 1)
        y = self.conv(F.pad(rearrange(x, "b t h w d -> b d t h w"), (1, 1, 1, 1, *time_pad)))
        y = rearrange(y, "b d t h w -> b t h w d")
        if self.order == "reference_temporal":
            y = y.reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4)
        return y
