"""Batch plans: which clips, at which resolution, form each batch; deterministic from seed, epoch and rank.

Training batches are planned globally (``batch_size × world_size`` clips per step, one kind and one
resolution per step) and each rank takes its own slice, so ranks see disjoint data and equal shapes.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from omnipipe.data.decode import HW
from omnipipe.data.errors import DataError
from omnipipe.data.media import MediaKind
from omnipipe.spec.data import MixSpec


@dataclass(frozen=True)
class BatchPlan:
    """One batch of one rank: ``indices`` into the pool of ``kind`` at ``resolution``.

    ``seed`` is the step's (the same on every rank) and ``offset`` this rank's first position in the
    step's global batch: clip i is cropped from ``(*seed, offset + i)``, so a step split across ranks
    is augmented exactly as the same step in one process.
    """

    kind: MediaKind
    resolution: HW
    indices: tuple[int, ...]
    seed: tuple[int, ...]
    offset: int = 0


def _chunks(count: int, chunk: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless chunks of ``chunk`` indices: a fresh permutation of ``range(count)`` each pass, tails dropped."""
    while True:
        order = rng.permutation(count)
        for start in range(0, count - chunk + 1, chunk):
            yield order[start : start + chunk]


def _kinds(kinds: Sequence[MediaKind], mix: MixSpec, rng: np.random.Generator) -> Iterator[MediaKind]:
    """The kind of each step: image batches make up ``mix.image_fraction`` of a joint stream."""
    if len(kinds) == 1:
        while True:
            yield kinds[0]
    fraction, step = mix.image_fraction, 0
    while True:
        if mix.schedule == "random":
            yield "image" if rng.random() < fraction else "video"
        else:  # the step completes another whole image share
            yield "image" if math.ceil((step + 1) * fraction) > math.ceil(step * fraction) else "video"
        step += 1


def train_plan(
    counts: dict[MediaKind, int],
    resolutions: Sequence[HW],
    batch_size: int,
    mix: MixSpec,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    num_batches: int | None = None,
) -> list[BatchPlan]:
    """Shuffled training batches of this rank; ``num_batches`` defaults to one pass over the clips."""
    if not 0 <= rank < world_size:
        raise DataError(f"rank {rank} is not in [0, {world_size})")
    step_size = batch_size * world_size
    for kind, count in counts.items():
        if count < step_size:
            raise DataError(f"{count} {kind} clips cannot fill one step of {batch_size} × {world_size} ranks")
    kinds = sorted(counts)
    chunks = {kind: _chunks(counts[kind], step_size, np.random.default_rng([seed, epoch, number]))
              for number, kind in enumerate(kinds)}  # fmt: skip
    picks = np.random.default_rng([seed, epoch, len(kinds)])
    kind_stream = _kinds(kinds, mix, picks)
    total = num_batches if num_batches is not None else sum(counts.values()) // step_size
    plans = []
    for step in range(total):
        kind = next(kind_stream)
        resolution = tuple(resolutions[int(picks.integers(len(resolutions)))])
        mine = next(chunks[kind])[rank * batch_size : (rank + 1) * batch_size]
        plans.append(BatchPlan(kind, resolution, tuple(int(i) for i in mine), (seed, epoch, step), rank * batch_size))
    return plans


def eval_plan(
    counts: dict[MediaKind, int], resolutions: Sequence[HW], batch_size: int, rank: int = 0, world_size: int = 1
) -> list[BatchPlan]:
    """Every clip once per resolution, in order (the last batch may be short); batch i goes to rank i mod world_size."""
    plans = [
        BatchPlan(kind, tuple(resolution), tuple(range(start, min(start + batch_size, counts[kind]))), ())
        for kind in sorted(counts)
        for resolution in resolutions
        for start in range(0, counts[kind], batch_size)
    ]
    return plans[rank::world_size]
