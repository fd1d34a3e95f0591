"""Real full disks and read-only folders for tests: a small tmpfs and a read-only bind mount (root only)."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind needs root")
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")


@contextmanager
def small_tmpfs(path: Path, kib: int) -> Iterator[Path]:
    """A tmpfs of ``kib`` KiB mounted at ``path`` (writes beyond it fail with ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # open memory maps must not block it


def resize_tmpfs(path: Path, kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(path)], check=True)


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` bind-mounted onto itself read-only (even root's writes fail with EROFS)."""
    _mount("--bind", str(path), str(path))
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)  # open memory maps must not block it
