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
from omnipipe.nn.tokenizer import Tokenizer


def tokenize_folder(
    model: Tokenizer, folder: Path, out: Path, resolution: tuple[int, int], frames: int, fps: float, device: str
) -> dict[str, Any]:
    """Write ``out/<kind>-<grid>.npy`` shards (one row per file) and ``out/index.json``; return the index."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and media_kind(p) is not None)
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    entries = []
    for path in tqdm(files, desc="tokenize", unit="file"):
        pixels = read_media(path, model, resolution, frames, fps).to(device)
        with torch.inference_mode():
            tokens = model.tokenize(pixels)[0].cpu()
        array = tokens.numpy().astype(np.int32 if not tokens.is_floating_point() else np.float32)
        shard = f"{'image' if pixels.shape[2] == 1 else 'video'}-{'x'.join(map(str, array.shape))}"
        entries.append({"path": str(path.relative_to(folder)), "shard": f"{shard}.npy", "row": len(groups[shard]),
                        "frames": pixels.shape[2]})  # fmt: skip
        groups[shard].append(array)
    for shard, rows in groups.items():
        write_npy(out / f"{shard}.npy", np.stack(rows))
    index = {
        "codebook_size": model.quantizer.codebook_size,
        "kind": "codes" if model.quantizer.codebook_size is not None else "latents",
        "resolution": list(resolution),
        "model": model.spec.model_dump(mode="json"),
        "files": entries,
    }
    write_json(out / "index.json", index)
    return index
