"""What a source lists: media items (one file each) and how videos are cut into clips."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MediaKind = Literal["image", "video"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".webm", ".avi", ".mkv", ".gif"})


def media_kind(path: str | Path, kinds: tuple[MediaKind, ...] = ("image", "video")) -> MediaKind | None:
    """``image``/``video`` from the file extension, or None when it is not one of ``kinds``."""
    suffix = Path(path).suffix.lower()
    if "image" in kinds and suffix in IMAGE_EXTENSIONS:
        return "image"
    if "video" in kinds and suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


@dataclass(frozen=True)
class MediaItem:
    """One media file of a source.

    ``key`` identifies it within the source (a relative path): it decides the train/val split, so it
    must not change when other files are added. ``kind`` is None for an unsupported file, which is
    reported as skipped. ``label`` is a class name or None. ``problem`` says why the source already
    knows the item cannot be used (it is then skipped with that reason).
    """

    key: str
    path: Path
    kind: MediaKind | None
    label: str | None = None
    max_clips: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ClipSampling:
    """How a video becomes clips: resampled to ``fps``, ``frames`` per clip, a new clip every ``stride`` frames."""

    fps: float
    frames: int
    stride: int
