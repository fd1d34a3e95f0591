"""Where a bright object on a dark background is, frame by frame: the centre of mass of its bright pixels.

Used on the moving digits (a white digit gliding over black), where the true motion is known: the
distance between the object's centre in a reconstruction and in the original measures how well a
tokenizer carries the motion.
"""
from __future__ import annotations

import torch

BRIGHT = 0.3  # grey levels (in [0, 1]) above this count as the object, weighted by how far above


def centres_of_mass(pixels: torch.Tensor, threshold: float = BRIGHT) -> torch.Tensor:
    """Pixels (B, C, T, H, W) in [-1, 1] → (row, column) of each frame's bright mass (B, T, 2); NaN when none."""
    grey = ((pixels.clamp(-1, 1) + 1) / 2).mean(dim=1).double()  # (B, T, H, W)
    weight = (grey - threshold).clamp_min(0)
    total = weight.sum(dim=(-2, -1))  # (B, T)
    rows = torch.arange(grey.shape[-2], dtype=grey.dtype, device=grey.device)
    cols = torch.arange(grey.shape[-1], dtype=grey.dtype, device=grey.device)
    centre = torch.stack([(weight.sum(-1) * rows).sum(-1), (weight.sum(-2) * cols).sum(-1)], dim=-1)  # (B, T, 2)
    return torch.where(total[..., None] > 0, centre / total[..., None].clamp_min(1e-12), torch.nan)


def position_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean distance in pixels (B,) between the object's centre in each frame of ``reconstruction`` and of
    ``target`` (B, C, T, H, W); frames where either has no bright mass are left out (NaN if all are)."""
    distance = (centres_of_mass(reconstruction) - centres_of_mass(target)).norm(dim=-1)  # (B, T)
    return distance.nanmean(dim=1).float()
