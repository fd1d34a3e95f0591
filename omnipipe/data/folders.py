"""Folder sources: ``image_folder`` and ``video_folder``; class labels from the first sub-folder."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from omnipipe.data.errors import MissingSourceError
from omnipipe.data.media import MediaItem, MediaKind, media_kind
from omnipipe.data.source import MediaSource, SourceParams
from omnipipe.spec.base import PositiveInt


def scan_folder(
    root: str, kinds: tuple[MediaKind, ...], labels: bool, max_files: int | None, max_clips: int | None = None
) -> list[MediaItem]:
    """Every non-hidden file under ``root``, sorted; symlinked folders are followed, each folder once.

    Files of other kinds, dangling symlinks, symlink loops and a symlink back to a folder already
    scanned are listed too, so that the report can say why they were skipped.
    """
    base = Path(root)
    if not base.is_dir():
        raise MissingSourceError("root", root)
    items = []
    media = 0
    for path, problem in sorted(_walk(base), key=lambda found: found[0].relative_to(base).parts):
        relative = path.relative_to(base)
        kind = media_kind(path, kinds) if problem is None else None
        if kind is not None:
            if max_files is not None and media >= max_files:
                continue
            media += 1
        label = relative.parts[0] if labels and len(relative.parts) > 1 else None
        items.append(MediaItem(relative.as_posix(), path, kind, label, max_clips, problem))
    return items


def _walk(base: Path) -> Iterator[tuple[Path, str | None]]:
    """Non-folder entries under ``base`` (hidden ones pruned) and folder symlinks that loop, with why."""
    seen: set[tuple[int, int]] = set()
    pending = [base]
    while pending:
        folder = pending.pop()
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            yield folder, "symlink to a folder that is already scanned (a loop or a duplicate)"
            continue
        seen.add((info.st_dev, info.st_ino))
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if _is_folder(entry):
                    pending.append(Path(entry.path))
                else:
                    yield Path(entry.path), None


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder or a symlink to one; a symlink loop is not (it is listed, and reported)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


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
