"""Network features computed once per input: a content-addressed cache on disk.

The generation metrics run the same real val clips (and the same decoded baseline samples) through
Inception or I3D for every generator that shares a token dataset; at about a quarter of a second per
image on a CPU that is most of an evaluation stage. A key is the SHA-256 of the network's identity
(its description, which names the weights file and its hash) and of the input tensor (dtype, shape,
bytes), so an entry can never be stale: other pixels or other weights are another key. Entries live
in ``<cache_dir>/features/<key>.safetensors`` (``omnipipe.metrics.packaged_weights.cache_dir``),
written atomically; a damaged entry is recomputed; beyond ``MAX_ENTRIES`` the oldest of this
folder's entries are removed (only files named as this cache names them).
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from omnipipe.atomic import atomic_write
from omnipipe.hashing import tensor_bytes
from omnipipe.metrics.packaged_weights import cache_dir
from omnipipe.storage import StorageError

log = logging.getLogger(__name__)

MAX_ENTRIES = 512
_ENTRY = re.compile(r"[0-9a-f]{64}\.safetensors")


def features_folder() -> Path:
    return cache_dir() / "features"


def input_key(identity: str, pixels: torch.Tensor) -> str:
    """The entry name of ``pixels`` through the network described by ``identity``."""
    digest = hashlib.sha256(identity.encode("utf-8"))
    digest.update(f"{pixels.dtype}{tuple(pixels.shape)}".encode())
    digest.update(tensor_bytes(pixels))
    return digest.hexdigest()


def cached_features(identity: str, features: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``features`` with each result kept on disk under the key of its input; same values, computed once."""

    def lookup(pixels: torch.Tensor) -> torch.Tensor:
        folder = features_folder()
        path = folder / f"{input_key(identity, pixels)}.safetensors"
        if path.is_file():
            try:
                return load_file(path)["features"]
            except (SafetensorError, KeyError, OSError) as error:
                log.warning("%s: unreadable cached features (%s); computing them again", path, error)
        result = features(pixels)
        try:
            data = save({"features": result.detach().cpu().contiguous()})
            atomic_write(path, lambda file: file.write(data))
            _evict(folder)
        except StorageError as error:  # a cache that cannot be written only costs time
            log.warning("feature cache not written: %s", error)
        return result

    return lookup


def _evict(folder: Path) -> None:
    """Remove this cache's oldest entries beyond ``MAX_ENTRIES``."""
    entries = [path for path in folder.iterdir() if _ENTRY.fullmatch(path.name)]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda path: path.stat().st_mtime)
    for path in entries[: len(entries) - MAX_ENTRIES]:
        path.unlink(missing_ok=True)
