"""What a checkpoint must match to be resumed: the settings, omnipipe's code and the inputs' contents.

Inputs are hashed once per stage start (the tiny pipeline's prepared data: well under a second)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omnipipe.hashing import file_sha256


def code_version() -> str:
    """A hash of omnipipe's own source files: a checkpoint is only continued by the code that wrote it."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def content_hash(path: Path) -> str:
    """SHA-256 over a file's bytes, or over a folder's files (relative names and bytes, in sorted order).

    Names are relative to ``path``, so a moved folder keeps its hash; a missing path hashes as such.
    """
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    if not path.is_dir():
        return "missing"
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def run_fingerprint(settings: dict[str, Any], inputs: Sequence[Path] = ()) -> str:
    """A hash of a task's settings, the code version and the contents of its input files and folders."""
    relevant = {"code": code_version(), "settings": settings, "inputs": [content_hash(path) for path in inputs]}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
