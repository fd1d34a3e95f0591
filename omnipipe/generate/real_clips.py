"""The real clips behind a token dataset's rows, as pixels: the reference of the generation metrics."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from omnipipe.data.loader import crop_clips, to_pixels
from omnipipe.data.shards import PreparedIndex
from omnipipe.data.split import Split
from omnipipe.generate.token_dataset import TokenDataset


def real_pixels(
    prepared_dir: str, data: TokenDataset, split: Split, rows: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(pixels (b, C, T, H, W) in [-1, 1], labels (b,)) of the clips of ``rows`` of ``split``, centre-cropped."""
    resolution = tuple(data.info["resolution"])
    pool = PreparedIndex.load(prepared_dir).pool(split, data.info["kind"], resolution)
    part = data.split(split)
    for start in range(0, len(rows), batch_size):
        chosen = rows[start : start + batch_size]
        pixels = to_pixels(crop_clips(pool.read(part.clips[chosen]), resolution, None))
        yield pixels, torch.from_numpy(part.labels[chosen])
