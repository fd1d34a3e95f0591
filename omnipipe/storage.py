"""Outputs that cannot be written — a full disk, a read-only or forbidden folder — as one line naming the
path and what to do, instead of the OS error's traceback."""
from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omnipipe.errors import OmnipipeError

KEPT = "run the command again: finished work is kept"


class StorageError(OmnipipeError, OSError):
    """An output that cannot be written (still an OSError, for callers that handle those)."""


def storage_problem(error: OSError) -> str | None:
    """What went wrong in words, with what to do, when ``error`` is a storage problem."""
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT) or (code is None and "requested and" in str(error)):  # numpy's short write
        return f"no space left on the device: free some space there or write elsewhere, then {KEPT}"
    if code == errno.EROFS:
        return f"the file system is read-only: write elsewhere or remount it writable, then {KEPT}"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: make the folder writable or write elsewhere, then {KEPT}"
    return None


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn a storage OSError raised inside into a StorageError naming ``path`` (what the caller writes)."""
    try:
        yield
    except StorageError:
        raise
    except OSError as error:
        problem = storage_problem(error)
        if problem is None:
            raise
        raise StorageError(f"{path}: cannot write: {problem}") from None
