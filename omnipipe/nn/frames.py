"""Fold a clip into its frames and back, so 2-D networks can judge videos frame by frame."""
from __future__ import annotations

import torch


def check_clip(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself when it is a ``(B, C, T, H, W)`` batch, else a ValueError naming its shape."""
    if x.ndim != 5:
        raise ValueError(f"expected pixels shaped (B, C, T, H, W), got {tuple(x.shape)}")
    return x


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` → ``(B·T, C, H, W)``, frames of one clip adjacent."""
    return check_clip(x).transpose(1, 2).flatten(0, 1)


def unfold_frames(y: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B·T, C, H, W)`` → ``(B, C, T, H, W)``; the inverse of :func:`fold_frames`."""
    return y.unflatten(0, (batch, -1)).transpose(1, 2)
