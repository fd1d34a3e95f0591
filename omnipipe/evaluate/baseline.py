"""The bicubic baseline: each frame down-sampled to the tokenizer's latent grid and back up."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_round_trip(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, C, T, H, W)`` → each frame resized (antialiased bicubic) to ``grid`` = (H', W') and back to (H, W).

    Every frame keeps its own small picture (a tokenizer with temporal patches ``pt`` keeps about
    one latent frame in ``pt``), and each position keeps C full values: the comparison favours the baseline.
    """
    b, c, t, h, w = pixels.shape
    frames = pixels.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    small = F.interpolate(frames, size=grid, mode="bicubic", antialias=True, align_corners=False)
    back = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)
    return back.view(b, t, c, h, w).permute(0, 2, 1, 3, 4)
