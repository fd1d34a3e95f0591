"""Token shards: the codes (or continuous latents) of a folder of media, grouped by grid shape, with an index.

```
<out>/image-1x8x8.npy     (N, 1, 8, 8) int32 codes (float32 latents (N, T', H', W', C) for a KL tokenizer)
<out>/video-2x8x8.npy     one row per file of that kind and grid, in the order of index.json
<out>/index.json          file → shard and row, skipped files with reasons, codebook size, model spec
<out>/parts/part-*.npz    while running: finished files, written every ``flush_every`` files (resume)
```
A killed run keeps its parts: the next run with the same tokenizer and settings skips the files
they hold (unless a file changed since: its part is redone). The shards and the index are written at
the end; then the parts are removed. Under torchrun the ranks share the files and each writes its
own parts.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from omnipipe.atomic import atomic_write, write_json, write_npy
from omnipipe.data.folders import scan_folder
from omnipipe.evaluate.media_input import SkippedMedia, read_media_pieces
from omnipipe.generate.contract import TokenLayout
from omnipipe.hashing import tensor_bytes
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.streaming import DEFAULT_CHUNK, streaming_chunk, tokenize_video, tube_frames
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.storage import storage_errors
from omnipipe.train.distributed import DistContext
from omnipipe.vtok.model import VTok

INDEX_FILE = "index.json"
PARTS_DIR = "parts"
PART_NAME = re.compile(r"part-\d{5,}\.npz")
SHARD_NAME = re.compile(r"(image|video)-\d+(x\d+)+(\+\d+(x\d+)+)*\.npy")


def tokenize_folder(
    model: Tokenizer | VTok,
    folder: Path,
    out: Path,
    resolution: tuple[int, int],
    frames: int | None,
    fps: float,
    device: str,
    on_skip: Callable[[str, str], None] = lambda path, reason: None,
    flush_every: int = 256,
    progress: bool = True,
    chunk: int | None = DEFAULT_CHUNK,
    ctx: DistContext | None = None,
) -> dict[str, Any]:
    """Write ``out/<kind>-<layout>.npy`` shards (one row per file) and ``out/index.json``; return the index.

    A video gives its first ``frames`` frames (every frame when None), decoded piece by piece and
    encoded ``chunk`` latent frames at a time when the model can stream (``omnipipe.nn.streaming``;
    None: as one whole clip), so its length does not decide the memory. A file that cannot be read
    is skipped: ``on_skip(path, reason)`` is called and the index lists it. Under torchrun (``ctx``
    with several ranks) rank r takes the files r, r + N, … of those left to do and writes its own
    parts; rank 0 then writes the shards and the index.
    A one-segment layout (a plain tokenizer) is stored as its grid ``(T', H', W')``, e.g. ``video-2x8x8``; a
    layout of several segments (VTok: key frame + residual tokens) as flat sequences, e.g.
    ``video-1x8x8+4x1x1``. ``index.json`` records each shard's layout (``TokenLayout.to_json``).
    """
    chunk = streaming_chunk(model, chunk)
    rank, world = (0, 1) if ctx is None else (ctx.rank, ctx.world_size)
    fingerprint = _fingerprint(model, resolution, frames, fps, chunk)
    tube = tube_frames(model)
    parts = _finished_parts(out, fingerprint, folder, delete=rank == 0)
    _barrier(world)  # stale parts are gone before anyone numbers new ones
    first = 1 + max((int(p.stem.split("-")[1]) for p in _part_files(out)), default=-1)
    _barrier(world)  # … and everyone has numbered before anyone writes
    numbers = itertools.count(first + rank, world)
    done = {entry["path"] for meta, _ in parts for entry in meta["files"] + meta["skipped"]}
    candidates = [item for item in scan_folder(str(folder), ("image", "video"), False, None) if item.kind or item.problem]
    mine = [item for item in candidates if item.key not in done][rank::world]
    pending = {"files": [], "skipped": []}
    arrays: dict[str, list[np.ndarray]] = defaultdict(list)
    for item in tqdm(mine, desc="tokenize", unit="file", disable=not progress or rank != 0):
        try:
            if item.problem is not None:
                raise SkippedMedia(item.path, item.problem)
            kind, pieces = read_media_pieces(item.path, resolution, frames, fps, at_least=1 + tube)
            try:
                with torch.inference_mode():
                    tokens, count = tokenize_video(model, (p.to(device) for p in pieces), chunk if kind == "video" else None)
                    tokens = model.to_sequence(tokens).cpu()
            except InputShapeError as error:
                raise InputShapeError(f"{item.path}: {error}") from None
        except SkippedMedia as skipped:
            on_skip(item.key, skipped.reason)
            pending["skipped"].append({"path": item.key, "reason": skipped.reason, "state": _state(item.path)})
        else:
            layout = model.layout(count, *resolution)
            if len(layout.segments) == 1:
                tokens = layout.to_grid(tokens)
            array = tokens[0].numpy().astype(np.int32 if not tokens.is_floating_point() else np.float32)
            shard = shard_name(count, layout)
            pending["files"].append({"path": item.key, "shard": f"{shard}.npy", "frames": count,
                                     "state": _state(item.path)})  # fmt: skip
            arrays[shard].append(array)
        if len(pending["files"]) + len(pending["skipped"]) >= flush_every:
            parts.append(_write_part(out, next(numbers), fingerprint, pending, arrays))
            pending, arrays = {"files": [], "skipped": []}, defaultdict(list)
    if pending["files"] or pending["skipped"]:
        parts.append(_write_part(out, next(numbers), fingerprint, pending, arrays))
    if world == 1:
        return _consolidate(model, out, resolution, parts)
    _barrier(world)
    if rank == 0:
        _consolidate(model, out, resolution, _finished_parts(out, fingerprint, folder, delete=False))
    _barrier(world)
    return json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shard_name(frames: int, layout: TokenLayout) -> str:
    """``image-1x8x8``, ``video-2x8x8`` or, for several segments, ``video-1x8x8+4x1x1``."""
    grids = "+".join("x".join(map(str, segment.grid)) for segment in layout.segments)
    return f"{'image' if frames == 1 else 'video'}-{grids}"


def _fingerprint(model: Tokenizer | VTok, resolution: tuple[int, int], frames: int | None, fps: float, chunk: int | None) -> str:
    """What decides the tokens: the model (spec and weights) and the input settings."""
    settings = [model.spec.model_dump(mode="json"), list(resolution), frames, fps, chunk]
    digest = hashlib.sha256(json.dumps(settings).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def _part_files(out: Path) -> list[Path]:
    folder = out / PARTS_DIR
    return sorted(p for p in folder.iterdir() if PART_NAME.fullmatch(p.name)) if folder.is_dir() else []


def _state(path: Path) -> list[int] | None:
    """Size and modification time: a part is reused only for files that did not change since."""
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def _finished_parts(
    out: Path, fingerprint: str, folder: Path, delete: bool = True
) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """The parts written with the same fingerprint whose files did not change since; others are deleted (if ``delete``)."""
    parts = []
    for path in _part_files(out):
        try:
            with np.load(path, allow_pickle=False) as part:
                meta = json.loads(str(part["meta"]))
                arrays = {key: part[key] for key in part.files if key != "meta"}
        except (OSError, ValueError, KeyError):
            meta = None
        if isinstance(meta, dict) and meta.get("fingerprint") == fingerprint and all(
            entry["state"] == _state(folder / entry["path"]) for entry in meta["files"] + meta["skipped"]
        ):
            parts.append((meta, arrays))
        elif delete:
            with storage_errors(path):
                path.unlink()
    return parts


def _write_part(
    out: Path, number: int, fingerprint: str, pending: dict[str, list], arrays: dict[str, list[np.ndarray]]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta = {"fingerprint": fingerprint, **pending}
    stacked = {shard: np.stack(rows) for shard, rows in arrays.items()}

    def write(file: IO[bytes]) -> None:
        np.savez(file, meta=np.array(json.dumps(meta)), **stacked)

    atomic_write(out / PARTS_DIR / f"part-{number:05d}.npz", write)
    return meta, stacked


def _consolidate(
    model: Tokenizer | VTok, out: Path, resolution: tuple[int, int], parts: list[tuple[dict[str, Any], dict[str, np.ndarray]]]
) -> dict[str, Any]:
    """Shards in file order from the parts, the index, then remove the parts and shards of an older index."""
    rows: dict[str, dict[str, np.ndarray]] = defaultdict(dict)  # shard → path → its row
    entries, skipped = [], []
    for meta, arrays in parts:
        seen: dict[str, int] = defaultdict(int)
        for entry in meta["files"]:
            shard = entry["shard"].removesuffix(".npy")
            rows[shard][entry["path"]] = arrays[shard][seen[shard]]
            seen[shard] += 1
            entries.append(entry)
        skipped += [{"path": entry["path"], "reason": entry["reason"]} for entry in meta["skipped"]]
    entries.sort(key=lambda entry: entry["path"])
    counters: dict[str, int] = defaultdict(int)
    files = []
    layouts: dict[str, dict[str, Any]] = {}
    for entry in entries:
        shard = entry["shard"].removesuffix(".npy")
        layouts[entry["shard"]] = model.layout(entry["frames"], *resolution).to_json()
        files.append({"path": entry["path"], "shard": entry["shard"], "row": counters[shard], "frames": entry["frames"]})
        counters[shard] += 1
    for shard, by_path in rows.items():
        write_npy(out / f"{shard}.npy", np.stack([by_path[path] for path in sorted(by_path)]))
    first = next(iter(layouts.values()), None)
    stale = _indexed_shards(out) - {f"{shard}.npy" for shard in rows}
    index = {
        "codebook_size": first["segments"][0]["vocab_size"] if first else None,
        "kind": first["kind"] if first else None,
        "resolution": list(resolution),
        "model": model.spec.model_dump(mode="json"),
        "layouts": layouts,
        "files": files,
        "skipped": sorted(skipped, key=lambda entry: entry["path"]),
    }
    write_json(out / INDEX_FILE, index)
    with storage_errors(out):
        for name in stale:
            (out / name).unlink(missing_ok=True)
        for path in _part_files(out):
            path.unlink()
        if (out / PARTS_DIR).is_dir() and not any((out / PARTS_DIR).iterdir()):
            (out / PARTS_DIR).rmdir()
    return index


def _indexed_shards(out: Path) -> set[str]:
    """The shard files an existing index of ours lists (only names of our layout)."""
    try:
        index = json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
        return {entry["shard"] for entry in index["files"] if SHARD_NAME.fullmatch(entry["shard"])}
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        return set()
