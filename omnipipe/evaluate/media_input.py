"""Media files as tokenizer input: decoded, cropped to the patch grid, as ``(1, C, T, H, W)`` in [-1, 1].

A file that cannot be used raises SkippedMedia naming it and the reason; the commands report it and
go on with the next file.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from omnipipe.data.decode import read_image, read_video_clips, video_frames
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
    kind = _usable_kind(path)
    try:
        if kind == "image":
            clip = read_image(path, resolution)
        else:
            clip = read_video_clips(path, ClipSampling(fps=fps, frames=frames, stride=frames), resolution, max_clips=1)[0]
    except ShortVideoError as error:
        raise SkippedMedia(path, f"{error}: lower --frames or --fps") from None
    except DecodeError as error:
        raise SkippedMedia(path, str(error)) from None
    return _pixels(path, clip, resolution)


def read_video_pieces(
    path: Path, resolution: tuple[int, int], frames: int | None, fps: float, at_least: int, piece: int = 16
) -> Iterator[torch.Tensor]:
    """A video's first ``frames`` frames at ``fps`` (every frame when None), centre-cropped to ``resolution``, as
    pieces ``(1, 3, ≤ piece, H, W)`` decoded as they are taken, so a long video never sits in memory whole.

    Raises SkippedMedia: at once for a file that is no usable video; while iterating for one that is
    smaller than ``resolution``, damaged, or shorter than ``frames`` (or ``at_least`` frames).
    """
    if _usable_kind(path) != "video":
        raise SkippedMedia(path, "not a video")
    wanted = frames if frames is not None else at_least

    def pieces() -> Iterator[torch.Tensor]:
        buffered: list[np.ndarray] = []
        count = 0
        try:
            for frame in video_frames(path, fps, resolution):
                buffered.append(frame)
                count += 1
                if len(buffered) == piece or count == frames:
                    yield _pixels(path, np.stack(buffered), resolution)
                    buffered = []
                if count == frames:
                    return
        except DecodeError as error:
            raise SkippedMedia(path, str(error)) from None
        if count < wanted:
            reason = f"shorter than one clip: {count} frames at {fps:g} fps, a clip needs {wanted}: lower --frames or --fps"
            raise SkippedMedia(path, reason)
        if buffered:
            yield _pixels(path, np.stack(buffered), resolution)

    return pieces()


def read_media_pieces(
    path: Path, resolution: tuple[int, int], frames: int | None, fps: float, at_least: int
) -> tuple[str, Iterator[torch.Tensor]]:
    """The kind of ``path`` and its pixels as pieces along time: an image as one ``(1, 3, 1, H, W)`` piece, a video
    as ``read_video_pieces`` gives it. Raises SkippedMedia (for a video possibly while iterating)."""
    if _usable_kind(path) == "image":
        return "image", iter([read_media(path, resolution, 1, fps)])
    return "video", read_video_pieces(path, resolution, frames, fps, at_least)


def _usable_kind(path: Path) -> str:
    """The media kind of ``path``, or SkippedMedia saying why it cannot be used."""
    reason = unusable_reason(path)
    kind = media_kind(path)
    if reason is None and kind is None:
        reason = f"not an image or video file (extension '{path.suffix}')"
    if reason is not None:
        raise SkippedMedia(path, reason)
    return kind


def _pixels(path: Path, clip: np.ndarray, resolution: tuple[int, int]) -> torch.Tensor:
    """uint8 frames (T, h, w, 3) centre-cropped to ``resolution`` → ``(1, 3, T, H, W)`` in [-1, 1]; SkippedMedia when smaller."""
    height, width = clip.shape[1:3]
    if height < resolution[0] or width < resolution[1]:
        raise SkippedMedia(
            path, f"media of {height}×{width} pixels is smaller than the resolution {resolution[0]}×{resolution[1]}"
        )
    top, left = (height - resolution[0]) // 2, (width - resolution[1]) // 2
    clip = clip[:, top : top + resolution[0], left : left + resolution[1]]
    return torch.from_numpy(np.array(clip)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
