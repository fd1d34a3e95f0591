"""Checks on an input file before anything opens it: missing, dangling or looping symlinks, folders, pipes."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

CHUNK = 1 << 20


def unusable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a media file, or None when it is a non-empty, readable regular file.

    Opening a pipe or a device would block or never end, so only regular files pass.
    """
    try:
        info = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        if path.is_symlink():
            return f"dangling symlink (its target {os.readlink(path)} does not exist)"
        if error.errno == errno.ENOENT:
            return "file not found"
        return f"cannot read file ({error.strerror})"
    if stat.S_ISDIR(info.st_mode):
        return "a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a pipe, socket or device)"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def file_digest(path: Path) -> str | None:
    """SHA-256 of the file's bytes, or None when it is not a readable regular file."""
    if unusable_reason(path) is not None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
