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


def one_frame_per_clip(*clips: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """The same random frame of each clip from every ``(B, C, T, H, W)`` tensor → ``(B, C, 1, H, W)`` each.

    One index per clip is drawn from ``generator`` (a CPU generator; None: torch's global one); nothing
    is drawn when T = 1.
    """
    batch, frames = check_clip(clips[0]).shape[0], clips[0].shape[2]
    if frames == 1:
        return clips
    index = torch.randint(frames, (batch,), generator=generator)
    rows = torch.arange(batch)
    return tuple(clip[rows, :, index.to(clip.device)].unsqueeze(2) for clip in clips)  # (B, C, H, W) → (B, C, 1, H, W)
