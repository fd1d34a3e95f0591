"""Token shards: the codes (or continuous latents) of a folder of media, grouped by grid shape, with an index."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from omnipipe.atomic import write_json, write_npy
from omnipipe.data.media import media_kind
from omnipipe.evaluate.media_input import read_media
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.vtok.model import VTok


def tokenize_folder(
    model: Tokenizer | VTok, folder: Path, out: Path, resolution: tuple[int, int], frames: int, fps: float, device: str
) -> dict[str, Any]:
    """Write ``out/<kind>-<layout>.npy`` shards (one row per file) and ``out/index.json``; return the index.

    A one-segment layout (a plain tokenizer) is stored as its grid ``(T', H', W')``, e.g. ``video-2x8x8``; a
    layout of several segments (VTok: key frame + residual tokens) as flat sequences, e.g. ``video-1x8x8+4x1x1``.
    ``index.json`` records each shard's layout (``TokenLayout.to_json``)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and media_kind(p) is not None)
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    layouts: dict[str, dict[str, Any]] = {}
    entries = []
    for path in tqdm(files, desc="tokenize", unit="file"):
        pixels = read_media(path, model, resolution, frames, fps).to(device)
        try:
            layout = model.layout(pixels.shape[2], *resolution)
            with torch.inference_mode():
                tokens = model.to_sequence(model.tokenize(pixels)).cpu()
        except InputShapeError as error:
            raise InputShapeError(f"{path}: {error}") from None
        if len(layout.segments) == 1:
            tokens = layout.to_grid(tokens)
        array = tokens[0].numpy().astype(np.int32 if not tokens.is_floating_point() else np.float32)
        grids = "+".join("x".join(map(str, segment.grid)) for segment in layout.segments)
        shard = f"{'image' if pixels.shape[2] == 1 else 'video'}-{grids}"
        layouts[f"{shard}.npy"] = layout.to_json()
        entries.append({"path": str(path.relative_to(folder)), "shard": f"{shard}.npy", "row": len(groups[shard]),
                        "frames": pixels.shape[2]})  # fmt: skip
        groups[shard].append(array)
    for shard, rows in groups.items():
        write_npy(out / f"{shard}.npy", np.stack(rows))
    first = next(iter(layouts.values()), None)
    index = {
        "codebook_size": first["segments"][0]["vocab_size"] if first else None,
        "kind": first["kind"] if first else None,
        "resolution": list(resolution),
        "model": model.spec.model_dump(mode="json"),
        "layouts": layouts,
        "files": entries,
    }
    write_json(out / "index.json", index)
    return index
