"""The training/evaluation loader over prepared shards: ``make_loader`` is what the trainer calls.

Each item of the loader is a whole ``Batch`` (one kind, one resolution), built in the worker, so the
output is identical for any ``num_workers``. Pixels are ``(B, C, T, H, W)`` float in [-1, 1]; an image
is a clip with ``T = 1``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from omnipipe.data.media import MediaKind
from omnipipe.data.sampler import BatchPlan, PlannedBatches, eval_plan, one_pass, train_plan_stream
from omnipipe.data.shards import Pool, PreparedIndex
from omnipipe.data.split import Split

if TYPE_CHECKING:
    from omnipipe.spec.experiment import Experiment
    from omnipipe.spec.train import StageSpec

STAGE_KINDS: dict[str, tuple[MediaKind, ...]] = {"images": ("image",), "joint": ("image", "video"), "videos": ("video",)}


class Batch(NamedTuple):
    pixels: torch.Tensor  # (B, C, T, H, W) float32 in [-1, 1]
    labels: torch.Tensor  # (B,) int64 class index, -1 where unlabelled


def crop_clips(clips: np.ndarray, size: tuple[int, int], seeds: Sequence[Sequence[int]] | None) -> np.ndarray:
    """Crop (B, T, H', W', 3) clips to ``size``: centred without ``seeds``, else at random with a random
    horizontal flip, clip i drawn from its own ``seeds[i]`` (so a batch split across ranks crops alike)."""
    height, width = clips.shape[2:4]
    out = np.empty((clips.shape[0], clips.shape[1], *size, 3), dtype=np.uint8)
    for number, clip in enumerate(clips):
        if seeds is None:
            top, left, flip = (height - size[0]) // 2, (width - size[1]) // 2, False
        else:
            rng = np.random.default_rng(seeds[number])
            top, left = int(rng.integers(height - size[0] + 1)), int(rng.integers(width - size[1] + 1))
            flip = bool(rng.random() < 0.5)
        crop = clip[:, top : top + size[0], left : left + size[1]]
        out[number] = crop[:, :, ::-1] if flip else crop
    return out


PIXEL_VALUES = np.arange(256, dtype=np.float32) / 127.5 - 1.0  # uint8 → [-1, 1]


def to_pixels(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) → float (B, C, T, H, W) in [-1, 1] (a table lookup: fast, torch-thread free)."""
    return torch.from_numpy(PIXEL_VALUES[clips.transpose(0, 4, 1, 2, 3)])


class BatchDataset(Dataset[Batch]):
    """Map-style dataset whose i-th item is the i-th planned batch."""

    def __init__(self, pools: dict[tuple[MediaKind, tuple[int, int]], Pool], plans: Sequence[BatchPlan], augment: bool) -> None:
        self.pools = pools
        self.plans = plans
        self.augment = augment

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, number: int) -> Batch:
        plan = self.plans[number]
        pool = self.pools[(plan.kind, plan.resolution)]
        indices = np.asarray(plan.indices, dtype=np.int64)
        seeds = [(*plan.seed, plan.offset + i) for i in range(len(indices))] if self.augment else None
        pixels = to_pixels(crop_clips(pool.read(indices), plan.resolution, seeds))
        return Batch(pixels, torch.from_numpy(pool.labels[indices]))


def make_loader(
    spec: Experiment,
    stage: StageSpec,
    split: Split = "train",
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
    num_workers: int = 0,
    num_batches: int | None = None,
    start_batch: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches for ``stage`` (``images``: image batches; ``joint``: image and video batches mixed by ``data.mix``;
    ``videos``: video batches).

    Train: shuffled, random crop and flip, one resolution per batch drawn from the stage's resolutions,
    ``num_batches`` batches (default: about one pass), skipping the first ``start_batch`` (to resume).
    Val: every clip once per resolution, centre crops. Deterministic from ``spec.seed``, ``epoch`` and
    ``rank``; ranks get disjoint clips.
    """
    data = spec.data
    index = PreparedIndex.load(data.prepared_dir)
    resolutions = [tuple(r) for r in (stage.resolutions or data.resolutions)]
    pools = {(kind, r): index.pool(split, kind, r) for kind in STAGE_KINDS[stage.data] for r in resolutions}
    counts = {kind: len(pools[(kind, resolutions[0])]) for kind in STAGE_KINDS[stage.data]}
    if split == "train":
        end = start_batch + (num_batches if num_batches is not None else one_pass(counts, stage.batch_size, world_size))
        args = (counts, resolutions, stage.batch_size, data.mix, spec.seed, epoch, rank, world_size)
        train_plan_stream(*args)  # checks now that the clips fill a step
        plans: Sequence[BatchPlan] = PlannedBatches(args, start_batch, end)
    else:
        end = None if num_batches is None else start_batch + num_batches
        plans = eval_plan(counts, resolutions, stage.batch_size, rank, world_size)[start_batch:end]
    dataset = BatchDataset(pools, plans, augment=split == "train")
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=pin_memory)
