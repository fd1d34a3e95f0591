"""``omnipipe encode-tokens``: a trained tokenizer over the prepared train/val clips → a token dataset.

Clips are selected by kind, resolution and class patterns, centre-cropped as the val loader does, and
encoded in chunks of ``chunk_clips`` (clips longer than ``stream_chunk`` latent frames are streamed
through the tokenizer that many at a time: ``omnipipe.nn.streaming``). A chunk writes its arrays, then its manifest (with a
fingerprint of the tokenizer file, the prepared index, the dataset's settings and the code); a
re-run keeps every chunk whose manifest matches, so an interrupted encode finishes the job. Under
torchrun rank r encodes chunks r, r + N, …; rank 0 then writes ``index.json`` and removes what no
current chunk owns.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from omnipipe.atomic import TMP_SUFFIX, write_json, write_npy
from omnipipe.data.errors import DataError
from omnipipe.data.loader import crop_clips, to_pixels
from omnipipe.data.shards import INDEX_FILE as PREPARED_INDEX
from omnipipe.data.shards import PreparedIndex
from omnipipe.data.split import SPLITS
from omnipipe.generate.contract import TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.token_dataset import CHUNKS_DIR, FORMAT, INDEX_FILE, TokenDataset, chunk_path, manifest_path
from omnipipe.nn.streaming import streaming_chunk, tokenize_video, tube_frames
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.vtok.model import VTok, load_tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.train.distributed import init_distributed
from omnipipe.train.fingerprint import code_version
from omnipipe.train.paths import StagePaths


def select_classes(names: list[str], patterns: list[str] | None, where: str) -> tuple[list[str], np.ndarray]:
    """The selected class names and a map old id → new id (-1: not selected), with ``-1`` (unlabelled) at the end.

    Without patterns every class is kept as it is (unlabelled clips too)."""
    if patterns is None:
        return list(names), np.array([*range(len(names)), -1], dtype=np.int64)
    chosen = [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    if not chosen:
        raise DataError(f"{where}: no prepared class matches {patterns} (classes: {', '.join(names) or 'none'})")
    mapping = np.full(len(names) + 1, -1, dtype=np.int64)
    for new, name in enumerate(chosen):
        mapping[names.index(name)] = new
    return chosen, mapping


def encode_tokens(
    spec: Experiment, dataset_name: str, registry: Registry, *, device: str | None = None, progress: bool = True
) -> TokenDataset:
    """Encode the token dataset ``generate.tokens[dataset_name]``; returns it as written."""
    settings = spec.generate.tokens[dataset_name]
    where = f"generate.tokens.{dataset_name}"
    ctx = init_distributed(device)
    out = GenerationPaths.of(spec).tokens(dataset_name)
    tokenizer_file = StagePaths.of(spec, settings.tokenizer).model_file
    model = load_tokenizer(tokenizer_file, registry, ctx.device)
    prepared = PreparedIndex.load(spec.data.prepared_dir)
    resolution = tuple(settings.resolution or spec.data.resolutions[0])
    classes, mapping = select_classes(prepared.classes, settings.classes, where)
    fingerprint = hashlib.sha256(json.dumps({
        "tokenizer": hashlib.sha256(tokenizer_file.read_bytes()).hexdigest(),
        "prepared": hashlib.sha256((Path(spec.data.prepared_dir) / PREPARED_INDEX).read_bytes()).hexdigest(),
        "settings": settings.model_dump(mode="json"), "code": code_version(),
    }, sort_keys=True).encode()).hexdigest()[:16]  # fmt: skip

    work = []  # (split, chunk number, pool, clip indices, new labels, flip)
    for split in SPLITS:
        pool = prepared.pool(split, settings.kind, resolution)
        new_labels = mapping[pool.labels]  # -1 for unlabelled clips and (with patterns) unselected classes
        selected = np.arange(len(pool)) if settings.classes is None else np.nonzero(new_labels >= 0)[0]
        if len(selected) == 0:
            raise DataError(f"{where}: no {settings.kind} clips of classes {settings.classes} in the {split} split")
        flip = settings.flip and split == "train"
        for number, start in enumerate(range(0, len(selected), settings.chunk_clips)):
            chosen = selected[start : start + settings.chunk_clips]
            work.append((split, number, pool, chosen, new_labels[chosen], flip))

    mine = [item for position, item in enumerate(work) if position % ctx.world_size == ctx.rank]
    todo = [item for item in mine if _finished(out, item[0], item[1], fingerprint) is None]
    with tqdm(total=sum(len(item[3]) for item in todo), desc=f"encode {dataset_name}", unit="clip",
              disable=not (progress and ctx.is_main)) as bar:  # fmt: skip
        for split, number, pool, chosen, labels, flip in todo:
            _encode_chunk(model, out, split, number, pool, chosen, labels, flip, resolution, settings.batch_size,
                          fingerprint, ctx.device, bar, streaming_chunk(model, settings.stream_chunk))  # fmt: skip
    if ctx.world_size > 1:
        dist.barrier()
    if ctx.is_main:
        manifests = [_finished(out, split, number, fingerprint) for split, number, *_ in work]
        missing = [f"{split}-{number:05d}" for (split, number, *_), m in zip(work, manifests) if m is None]
        if missing:
            raise DataError(f"{out}: chunks {', '.join(missing)} were not written")
        _write_index(out, spec, settings, classes, manifests, work, fingerprint)
        _sweep(out, work, manifests)
    if ctx.world_size > 1:
        dist.barrier()
    return TokenDataset.load(out)


def _encode_chunk(
    model: Tokenizer | VTok, out: Path, split: str, number: int, pool: Any, chosen: np.ndarray, labels: np.ndarray,
    flip: bool, resolution: tuple[int, int], batch_size: int, fingerprint: str, device: torch.device, bar: tqdm,
    stream_chunk: int | None,
) -> None:  # fmt: skip
    rows: list[np.ndarray] = []
    layout: dict[str, Any] = {}
    for start in range(0, len(chosen), batch_size):
        indices = chosen[start : start + batch_size]
        pixels = to_pixels(crop_clips(pool.read(indices), resolution, None)).to(device)  # (b, C, T, H, W)
        versions = [pixels, pixels.flip(-1)] if flip else [pixels]
        layout = model.layout(pixels.shape[2], *resolution).to_json()
        with torch.inference_mode():
            encoded = [model.to_sequence(_tokenize(model, version, stream_chunk)) for version in versions]  # (b, L) or (b, L, C)
        rows += [e.cpu().numpy() for e in encoded]
        bar.update(len(indices))
    tokens = np.concatenate(rows[0::2] + rows[1::2] if flip else rows)  # originals first, then flipped copies
    copies = 2 if flip else 1
    arrays = {
        "tokens": tokens.astype(np.int32 if tokens.dtype.kind in "iu" else np.float32),
        "labels": np.tile(labels, copies),
        "clips": np.tile(chosen, copies).astype(np.int64),
        "flipped": np.repeat(np.arange(copies) == 1, len(chosen)),
    }
    for name, array in arrays.items():
        write_npy(out / chunk_path(split, number, name), array)
    manifest = {"fingerprint": fingerprint, "count": len(tokens), "layout": layout,
                **{name: chunk_path(split, number, name) for name in arrays}}  # fmt: skip
    write_json(out / manifest_path(split, number), manifest)


def _tokenize(model: Tokenizer | VTok, pixels: torch.Tensor, chunk: int | None) -> Any:
    """``model.tokenize(pixels)``; clips longer than ``chunk`` latent frames are streamed that many at a time."""
    if chunk is None or pixels.shape[2] <= 1 + (chunk - 1) * tube_frames(model):
        return model.tokenize(pixels)
    return tokenize_video(model, [pixels], chunk)[0]


def _finished(out: Path, split: str, number: int, fingerprint: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads((out / manifest_path(split, number)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("fingerprint") != fingerprint:
        return None
    paths = [manifest.get(name) for name in ("tokens", "labels", "clips", "flipped")]
    return manifest if all(p and (out / p).is_file() for p in paths) else None


def _write_index(out: Path, spec: Experiment, settings: Any, classes: list[str], manifests: list[dict[str, Any]],
                 work: list[tuple[Any, ...]], fingerprint: str) -> None:  # fmt: skip
    layout = TokenLayout.from_json(manifests[0]["layout"]).with_classes(len(classes))
    splits: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for (split, *_), manifest in zip(work, manifests):
        splits[split].append({k: manifest[k] for k in ("count", "tokens", "labels", "clips", "flipped")})
    write_json(out / INDEX_FILE, {
        "format": FORMAT, "layout": layout.to_json(), "classes": classes, "kind": settings.kind,
        "resolution": list(settings.resolution or spec.data.resolutions[0]), "tokenizer": settings.tokenizer,
        "flip": settings.flip, "fingerprint": fingerprint, "splits": splits,
    })  # fmt: skip


def _sweep(out: Path, work: list[tuple[Any, ...]], manifests: list[dict[str, Any]]) -> None:
    """Remove chunk files and manifests that no current chunk owns (older settings), and temporary files."""
    keep = {out / m[name] for m in manifests for name in ("tokens", "labels", "clips", "flipped")}
    keep |= {out / manifest_path(split, number) for split, number, *_ in work}
    for folder in [*(out / split for split in SPLITS), out / CHUNKS_DIR]:
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if path.is_file() and path not in keep:
                path.unlink()
    for path in out.rglob(f"*{TMP_SUFFIX}"):
        path.unlink()
