"""What ``prepare`` owns in its folder, and the only things it ever deletes.

A prepared folder carries a marker file, written first into a new or empty folder. Inside it
``prepare`` deletes only (1) shards that one of its unit manifests lists — a unit claims the shards
it may write in ``units/<id>.json`` before it writes them, so a killed unit is cleaned up too —,
(2) those manifests, and (3) the temporary siblings of its atomic writes. Anything else found there
is left in place and reported. A non-empty folder without the marker is refused, untouched.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from omnipipe.atomic import TMP_SUFFIX, write_json
from omnipipe.data.errors import DataError
from omnipipe.data.shards import FORMAT, INDEX_FILE, REPORT_FILE, UNITS_DIR

MARKER_FILE = "omnipipe-prepared.json"
MARKER = {"written_by": "omnipipe prepare", "format": FORMAT}
UNIT_ID = r"s\d{2,}-u\d{5,}"
SHARD_PATH = re.compile(rf"(train|val)/(image|video)-\d+x\d+/{UNIT_ID}\.npy")
MANIFEST_NAME = re.compile(rf"{UNIT_ID}\.json")
TOP_LEVEL_FILES = (MARKER_FILE, INDEX_FILE, REPORT_FILE)
TEMPORARY = re.compile(rf"(?P<name>.+)\.\d+{re.escape(TMP_SUFFIX)}")  # atomic.py's <name>.<pid>.tmp


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _is_ours(relative: str) -> bool:
    """Whether a path (relative to the folder, POSIX) is one our layout defines."""
    folder, _, name = relative.rpartition("/")
    if folder == UNITS_DIR:
        return MANIFEST_NAME.fullmatch(name) is not None
    return relative in TOP_LEVEL_FILES or SHARD_PATH.fullmatch(relative) is not None


class PreparedFolder:
    """``data.prepared_dir``: claimed with a marker, cleaned only of what its manifests list."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def claim(self, where: str = "data.prepared_dir") -> None:
        """Make the folder ours: create it (with the marker) when missing or empty, adopt one that an
        earlier omnipipe prepared (our ``index.json``), refuse any other (DataError, nothing touched)."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise DataError(f"{where}: {root} is a file, not a folder")
        if _read_json(root / MARKER_FILE) == MARKER:
            return
        index = _read_json(root / INDEX_FILE)
        legacy = isinstance(index, dict) and index.get("format") == FORMAT and isinstance(index.get("pools"), list)
        if root.exists() and not legacy and any(root.iterdir()):
            raise DataError(
                f"{where}: {root} is not empty and was not written by omnipipe prepare (no {MARKER_FILE}); "
                "prepare only writes into a new or empty folder or one it prepared before: choose another folder"
            )
        write_json(root / MARKER_FILE, MARKER)

    def manifests(self) -> dict[str, dict[str, Any]]:
        """Our unit manifests by unit id: JSON objects whose every listed shard is a path of our layout."""
        found = {}
        folder = self.root / UNITS_DIR
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            manifest = _read_json(path)
            if MANIFEST_NAME.fullmatch(path.name) and isinstance(manifest, dict) and self._lists_only_ours(manifest):
                found[path.stem] = manifest
        return found

    @staticmethod
    def _lists_only_ours(manifest: dict[str, Any]) -> bool:
        shards = manifest.get("shards")
        return isinstance(shards, list) and all(
            isinstance(s, dict) and isinstance(s.get("path"), str) and SHARD_PATH.fullmatch(s["path"]) for s in shards
        )

    def remove_unit(self, unit_id: str, manifest: dict[str, Any]) -> None:
        """Delete the shards ``manifest`` lists, then the manifest (a crash in between leaves it to retry)."""
        for shard in manifest["shards"]:
            (self.root / shard["path"]).unlink(missing_ok=True)
        (self.root / UNITS_DIR / f"{unit_id}.json").unlink(missing_ok=True)

    def remove_temporaries(self) -> None:
        """Delete leftover temporary files of our atomic writes (from a killed run) in our sub-folders."""
        for path in self._files():
            relative = path.relative_to(self.root).as_posix()
            match = TEMPORARY.fullmatch(path.name)
            if match and _is_ours(f"{relative.rpartition('/')[0]}/{match['name']}".lstrip("/")):
                path.unlink(missing_ok=True)

    def remove_empty_folders(self) -> None:
        """Remove empty shard folders and split folders that our layout defines."""
        for folder in sorted(self.root.glob("*/*"), reverse=True) + sorted(self.root.glob("*")):
            relative = folder.relative_to(self.root).as_posix()
            if folder.is_dir() and not folder.is_symlink() and re.fullmatch(r"(train|val)(/(image|video)-\d+x\d+)?|units", relative):
                if not any(folder.iterdir()):
                    folder.rmdir()

    def foreign_files(self, ours: set[str]) -> list[str]:
        """Files other than the top-level ones and ``ours`` (paths relative to the folder): left in place, reported."""
        found = (path.relative_to(self.root).as_posix() for path in self._files())
        return sorted(relative for relative in found if relative not in ours and relative not in TOP_LEVEL_FILES)

    def _files(self) -> list[Path]:
        return [path for path in self.root.rglob("*") if path.is_file() or path.is_symlink()]
