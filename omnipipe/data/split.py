"""Deterministic train/val split from a hash of a stable key, so adding files never moves old ones."""
from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")


def split_of(key: str, val_fraction: float) -> Split:
    """``val`` for a fraction ``val_fraction`` of keys, decided by the key alone."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"
