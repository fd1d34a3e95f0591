"""The ``manifest`` source: a CSV (``path[,label]``, optional header) or JSONL (``{"path", "label"}``) file."""
from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path

from pydantic import Field

from omnipipe.data.errors import DataError, MissingSourceError
from omnipipe.data.media import MediaItem, media_kind
from omnipipe.data.source import MediaSource, SourceParams
from omnipipe.spec.base import PositiveInt


def read_manifest(path: Path) -> list[tuple[str, str | None]]:
    """``(path, label)`` rows of a ``.csv`` or ``.jsonl`` manifest; a malformed row raises DataError."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a UTF-8 text file (byte {error.start})") from None
    rows: list[tuple[str, str | None]] = []
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                media, label = record["path"], record.get("label")
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                raise DataError(f"{path}:{number}: expected a JSON object with a 'path' key") from None
            rows.append((str(media), None if label is None else str(label)))
        return rows
    reader = csv.reader(text.splitlines())
    for number in itertools.count(1):
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataError(f"{path}:{reader.line_num}: unreadable CSV row ({error})") from None
        cells = [cell.strip() for cell in row]
        if not any(cells) or (number == 1 and cells[0].lower() == "path"):
            continue
        if len(cells) > 2 or not cells[0]:
            raise DataError(f"{path}:{number}: expected 'path' or 'path,label', got {row!r}")
        rows.append((cells[0], cells[1] if len(cells) == 2 and cells[1] else None))
    return rows


class Manifest(MediaSource):
    """Images and videos listed in a CSV or JSONL file of ``path[,label]``; relative paths are under ``root``.

    A row whose path leads outside ``root`` (``../x.png``, an absolute path elsewhere) is skipped and
    reported unless ``allow_outside_root`` is set. The check is on the written path, so symlinks placed
    inside ``root`` are followed.
    """

    class Params(SourceParams):
        path: str = Field(description="the .csv or .jsonl manifest")
        root: str | None = Field(default=None, description="base of relative paths (default: the manifest's folder)")
        allow_outside_root: bool = Field(default=False, description="read rows whose path leads outside root")
        max_files: PositiveInt | None = Field(default=None, description="use only the first N rows")
        max_clips_per_video: PositiveInt | None = Field(default=None, description="cut at most N clips per video")

    def scan(self) -> list[MediaItem]:
        p = self.params
        manifest = Path(p.path)
        if not manifest.is_file():
            raise MissingSourceError("path", p.path, "manifest file")
        root = Path(p.root) if p.root is not None else manifest.parent
        if not root.is_dir():
            raise MissingSourceError("root", str(root))
        rows = read_manifest(manifest)[: p.max_files]
        base = os.path.abspath(root)
        outside = f"outside the manifest's root {root} (set allow_outside_root: true to read it)"
        items = []
        for media, label in rows:
            inside = os.path.normpath(os.path.join(base, media)).startswith(base + os.sep)
            problem = None if inside or p.allow_outside_root else outside
            items.append(MediaItem(media, root / media, media_kind(media), label, p.max_clips_per_video, problem))
        return items
