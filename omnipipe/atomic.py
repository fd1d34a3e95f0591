"""Atomic writes: readers see the old file or the whole new one, never a part (tmp file, fsync, rename)."""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from omnipipe.storage import storage_errors

TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make the renames inside ``path`` durable."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary sibling, fsync it, then rename it over ``path``.

    A full disk or a read-only folder raises StorageError naming ``path``; no temporary file is left.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)


def write_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda file: np.save(file, array, allow_pickle=False))


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda file: file.write((json.dumps(value, indent=1) + "\n").encode("utf-8")))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of named values as CSV, columns in order of first appearance (empty where a row lacks one)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda file: file.write(text.getvalue().encode("utf-8")))
