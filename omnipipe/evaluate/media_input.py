"""Media files as tokenizer input: decoded, cropped to the patch grid, as ``(1, C, T, H, W)`` in [-1, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omnipipe.data.decode import read_image, read_video_clips
from omnipipe.data.media import ClipSampling, media_kind
from omnipipe.errors import OmnipipeError
from omnipipe.nn.tokenizer import Tokenizer


def clip_frames(model: Tokenizer, wanted: int) -> int:
    """The largest frame count ≤ ``wanted`` that the patchifier accepts (1 + k·pt)."""
    tube = getattr(model.patchifier.params, "temporal_patch_size", 1)
    return 1 + (max(wanted, 1) - 1) // tube * tube


def read_media(path: Path, model: Tokenizer, resolution: tuple[int, int], frames: int, fps: float) -> torch.Tensor:
    """``path`` decoded and centre-cropped to ``resolution`` (a multiple of the patch size): ``(1, 3, T, H, W)``."""
    kind = media_kind(path)
    if kind is None:
        raise OmnipipeError(f"{path}: not an image or video file")
    if kind == "image":
        clip = read_image(path, resolution)
    else:
        count = clip_frames(model, frames)
        clip = read_video_clips(path, ClipSampling(fps=fps, frames=count, stride=count), resolution, max_clips=1)[0]
    clip = _centre(clip, resolution)
    return torch.from_numpy(np.array(clip)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1


def _centre(clip: np.ndarray, resolution: tuple[int, int]) -> np.ndarray:
    """Crop ``(T, h, w, 3)`` (already covering ``resolution``) to exactly ``resolution``, centred."""
    height, width = clip.shape[1:3]
    if height < resolution[0] or width < resolution[1]:
        raise OmnipipeError(f"media of {height}×{width} pixels is smaller than the resolution {resolution[0]}×{resolution[1]}")
    top, left = (height - resolution[0]) // 2, (width - resolution[1]) // 2
    return clip[:, top : top + resolution[0], left : left + resolution[1]]
