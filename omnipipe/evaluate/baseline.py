"""The bicubic baseline: each frame down-sampled to the tokenizer's latent grid and back up."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from omnipipe.nn.frames import fold_frames, unfold_frames


def bicubic_round_trip(pixels: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(B, C, T, H, W)`` → each frame resized (antialiased bicubic) to ``grid`` = (H', W') and back to (H, W).

    Every frame keeps its own small picture (a tokenizer with temporal patches ``pt`` keeps about
    one latent frame in ``pt``), and each position keeps C full values: the comparison favours the baseline.
    """
    small = F.interpolate(fold_frames(pixels), size=grid, mode="bicubic", antialias=True, align_corners=False)
    back = F.interpolate(small, size=pixels.shape[3:], mode="bicubic", align_corners=False).clamp(-1, 1)
    return unfold_frames(back, pixels.shape[0])
