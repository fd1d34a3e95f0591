"""Convolutional position encoding (PEG): a depthwise 3×3×3 convolution over the token grid.

Added as a residual before an attention block (``x + peg(x)``), it gives attention a sense of
position without any table, at any grid size. ``causal`` pads two frames before and none after,
so a frame never sees later ones (an image, T' = 1, then sees only itself); given a ``ConvState``,
the frames continue a stream and the state's last frames take the place of that padding.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from omnipipe.nn.stream_state import ConvState

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

    @property
    def streams(self) -> bool:
        """Whether frames can be encoded chunk by chunk (causal in time, on the grid as it is)."""
        return self.kind == "causal" and self.order == "grid"

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """(B, T, H, W, D) → (B, T, H, W, D); with ``state``, ``x`` follows the frames it holds (updated)."""
        if state is not None:
            return self._continue(x, state)
        b, t, h, w, d = x.shape
        if self.order == "reference_temporal":
            x = x.permute(0, 2, 3, 1, 4).reshape(b, t, h, w, d)  # (B, H, W, T) memory read as (B, T, H, W)
        time_pad = (2, 0) if self.kind == "causal" else (1, 1)
        y = self.conv(F.pad(rearrange(x, "b t h w d -> b d t h w"), (1, 1, 1, 1, *time_pad)))
        y = rearrange(y, "b d t h w -> b t h w d")
        if self.order == "reference_temporal":
            y = y.reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4)
        return y

    def _continue(self, x: torch.Tensor, state: ConvState) -> torch.Tensor:
        """The causal encoding of frames that follow ``state.frames``; the zero padding stands for frames before the video."""
        if not self.streams:
            raise ValueError(f"a {self.kind} conv position encoding in '{self.order}' order cannot continue a stream")
        past = 0 if state.frames is None else state.frames.shape[1]
        window = x if state.frames is None else torch.cat([state.frames, x], dim=1)  # (B, past + T, H, W, D)
        padded = F.pad(rearrange(window, "b t h w d -> b d t h w"), (1, 1, 1, 1, 2 - past, 0))
        state.frames = window[:, -2:].clone()
        return rearrange(self.conv(padded), "b d t h w -> b t h w d")
