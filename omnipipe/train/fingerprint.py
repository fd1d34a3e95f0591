"""What a checkpoint must match to be resumed: the settings, omnipipe's code and the inputs' contents."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def code_version() -> str:
    """A hash of omnipipe's own source files: a checkpoint is only continued by the code that wrote it."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_fingerprint(settings: dict[str, Any]) -> str:
    """A hash of a task's settings and the code version."""
    relevant = {"code": code_version(), "settings": settings}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
