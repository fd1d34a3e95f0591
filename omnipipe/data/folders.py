"""Folder sources: ``image_folder`` and ``video_folder``; class labels from the first sub-folder."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from omnipipe.data.errors import MissingSourceError
from omnipipe.data.media import MediaItem, MediaKind, media_kind
from omnipipe.data.source import MediaSource, SourceParams
from omnipipe.spec.base import PositiveInt


def scan_folder(
    root: str, kinds: tuple[MediaKind, ...], labels: bool, max_files: int | None, max_clips: int | None = None
) -> list[MediaItem]:
    """Every non-hidden file under ``root`` (sorted); files of other kinds are listed as unsupported."""
    base = Path(root)
    if not base.is_dir():
        raise MissingSourceError("root", root)
    items = []
    media = 0
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        kind = media_kind(path, kinds)
        if kind is not None:
            if max_files is not None and media >= max_files:
                continue
            media += 1
        label = relative.parts[0] if labels and len(relative.parts) > 1 else None
        items.append(MediaItem(relative.as_posix(), path, kind, label, max_clips))
    return items


class FolderParams(SourceParams):
    root: str = Field(description="folder to scan recursively")
    labels: bool = Field(default=True, description="class label = name of the first sub-folder under root")
    max_files: PositiveInt | None = Field(default=None, description="use only the first N media files (sorted)")


class ImageFolder(MediaSource):
    """Images (jpg, png, webp) under a folder, e.g. ImageNet's train/<wnid>/*.JPEG."""

    Params = FolderParams

    def scan(self) -> list[MediaItem]:
        p = self.params
        return scan_folder(p.root, ("image",), p.labels, p.max_files)


class VideoFolder(MediaSource):
    """Videos (mp4, webm, avi, mkv, gif) under a folder, decoded with PyAV, e.g. UCF-101's <class>/*.avi."""

    class Params(FolderParams):
        max_clips_per_video: PositiveInt | None = Field(default=None, description="cut at most N clips per video")

    def scan(self) -> list[MediaItem]:
        p = self.params
        return scan_folder(p.root, ("video",), p.labels, p.max_files, p.max_clips_per_video)
