"""Media files as tokenizer input: decoded, cropped to the patch grid, as ``(1, C, T, H, W)`` in [-1, 1].

A file that cannot be used raises SkippedMedia naming it and the reason; the commands report it and
go on with the next file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omnipipe.data.decode import read_image, read_video_clips
from omnipipe.data.errors import DecodeError, ShortVideoError
from omnipipe.data.file_checks import unusable_reason
from omnipipe.data.media import ClipSampling, media_kind
from omnipipe.errors import OmnipipeError


class SkippedMedia(OmnipipeError):
    """A media file that cannot be tokenized: ``path: reason``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_media(path: Path, resolution: tuple[int, int], frames: int, fps: float) -> torch.Tensor:
    """``path`` decoded and centre-cropped to ``resolution``: ``(1, 3, T, H, W)``; a video gives its first
    ``frames`` frames at ``fps`` (``frames`` is one the patchifier accepts). Raises SkippedMedia."""
    reason = unusable_reason(path)
    kind = media_kind(path)
    if reason is None and kind is None:
        reason = f"not an image or video file (extension '{path.suffix}')"
    if reason is not None:
        raise SkippedMedia(path, reason)
    try:
        if kind == "image":
            clip = read_image(path, resolution)
        else:
            clip = read_video_clips(path, ClipSampling(fps=fps, frames=frames, stride=frames), resolution, max_clips=1)[0]
    except ShortVideoError as error:
        raise SkippedMedia(path, f"{error}: lower --frames or --fps") from None
    except DecodeError as error:
        raise SkippedMedia(path, str(error)) from None
    height, width = clip.shape[1:3]
    if height < resolution[0] or width < resolution[1]:
        raise SkippedMedia(
            path, f"media of {height}×{width} pixels is smaller than the resolution {resolution[0]}×{resolution[1]}"
        )
    top, left = (height - resolution[0]) // 2, (width - resolution[1]) // 2
    clip = clip[:, top : top + resolution[0], left : left + resolution[1]]
    return torch.from_numpy(np.array(clip)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
