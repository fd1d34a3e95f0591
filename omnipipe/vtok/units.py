"""Residual units: what one residual token stands for — a later frame, or a later latent frame.

A unit has its own latent grid (H', W') in the OmniTokenizer's space. Index 0 is the key frame:

- ``frame`` (the default): every frame is encoded on its own, as the causal tokenizer encodes an
  image (frame 0 alone is exactly the key frame's tokens), and decoded as an image; a clip of T frames
  has T − 1 units. A frame equal to the key frame has exactly the key frame's features.
- ``latent_frame``: the clip is encoded as a video; each later latent frame (a tube of pt frames) is
  a unit, and the predicted grids are decoded together by the video decoder; T' − 1 units.
"""
from __future__ import annotations

import torch

from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.frames import fold_frames, unfold_frames
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.spec.vtok import ResidualUnit


def check_frames(frames: int, shape: tuple[int, ...] | None = None) -> None:
    """VTok needs a key frame and at least one later frame."""
    if frames < 2:
        got = f"pixels of shape {shape} ({frames} frames)" if shape is not None else f"{frames} frames"
        raise InputShapeError(f"VTok needs clips of at least 2 frames (a key frame and a later one); got {got}")


def check_clip(x: torch.Tensor) -> None:
    """Pixels (B, C, T ≥ 2, H, W), else one clear InputShapeError."""
    check_frames(x.shape[2] if x.ndim == 5 else 0, tuple(x.shape))


def unit_count(unit: ResidualUnit, base: Tokenizer, frames: int) -> int:
    """Residual tokens of a clip of ``frames`` frames."""
    if unit == "frame":
        return frames - 1
    return base.patchifier.latent_grid(frames, 0, 0)[0] - 1


def encode_units(unit: ResidualUnit, base: Tokenizer, x: torch.Tensor) -> torch.Tensor:
    """Pixels (B, C, T, H, W) → encoder features (B, 1 + U, H', W', D), the key frame first."""
    check_clip(x)
    if unit == "frame":
        features = base.encode(fold_frames(x)[:, :, None])  # (B·T, 1, H', W', D)
        return features.view(x.shape[0], x.shape[2], *features.shape[2:])
    return base.encode(x)


def decode_units(unit: ResidualUnit, base: Tokenizer, latents: torch.Tensor) -> torch.Tensor:
    """Latents (B, 1 + U, H', W', D) after the bottleneck → pixels (B, C, T, H, W)."""
    if unit == "frame":
        frames = base.decode(latents.flatten(0, 1)[:, None])  # (B·T, C, 1, H, W)
        return unfold_frames(frames[:, :, 0], latents.shape[0])
    return base.decode(latents)
