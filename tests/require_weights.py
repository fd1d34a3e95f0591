"""Tests that need the weights shipped in registry packages skip without them — or fail where
``OMNIPIPE_REQUIRE_WEIGHTS=1`` (``.ci/run``), so CI cannot pass by skipping them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def require(found: Path | None, install: str) -> Path:
    """``found`` when it exists; otherwise skip (fail in CI) with the command that installs it."""
    if found is not None:
        return found
    message = f"a weights package is not installed: {install}"
    if os.environ.get("OMNIPIPE_REQUIRE_WEIGHTS"):
        pytest.fail(message)
    pytest.skip(message)
