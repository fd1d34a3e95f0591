"""Batch plans: which clips, at which resolution, form each batch; deterministic from seed, epoch and rank.

Training batches are planned globally (``batch_size × world_size`` clips per step, one kind and one
resolution per step) and each rank takes its own slice, so ranks see disjoint data and equal shapes.
"""
from __future__ import annotations

import itertools
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


def train_plan_stream(
    counts: dict[MediaKind, int],
    resolutions: Sequence[HW],
    batch_size: int,
    mix: MixSpec,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[BatchPlan]:
    """This rank's shuffled training batches, without end (generated one at a time)."""
    if not 0 <= rank < world_size:
        raise DataError(f"rank {rank} is not in [0, {world_size})")
    step_size = batch_size * world_size
    for kind, count in counts.items():
        if count < step_size:
            raise DataError(f"{count} {kind} clips cannot fill one step of {batch_size} × {world_size} ranks")
    return _stream(counts, resolutions, batch_size, mix, seed, epoch, rank, step_size)


def _stream(
    counts: dict[MediaKind, int], resolutions: Sequence[HW], batch_size: int, mix: MixSpec, seed: int, epoch: int,
    rank: int, step_size: int,
) -> Iterator[BatchPlan]:  # fmt: skip
    kinds = sorted(counts)
    chunks = {kind: _chunks(counts[kind], step_size, np.random.default_rng([seed, epoch, number]))
              for number, kind in enumerate(kinds)}  # fmt: skip
    picks = np.random.default_rng([seed, epoch, len(kinds)])
    kind_stream = _kinds(kinds, mix, picks)
    for step in itertools.count():
        kind = next(kind_stream)
        resolution = tuple(resolutions[int(picks.integers(len(resolutions)))])
        mine = next(chunks[kind])[rank * batch_size : (rank + 1) * batch_size]
        yield BatchPlan(kind, resolution, tuple(int(i) for i in mine), (seed, epoch, step), rank * batch_size)


def one_pass(counts: dict[MediaKind, int], batch_size: int, world_size: int = 1) -> int:
    """Steps that take about one pass over the clips."""
    return sum(counts.values()) // (batch_size * world_size)


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
    """The first ``num_batches`` (default: about one pass) batches of ``train_plan_stream``, as a list."""
    stream = train_plan_stream(counts, resolutions, batch_size, mix, seed, epoch, rank, world_size)
    total = num_batches if num_batches is not None else one_pass(counts, batch_size, world_size)
    return list(itertools.islice(stream, total))


class PlannedBatches(Sequence[BatchPlan]):
    """Batches ``[start, end)`` of ``train_plan_stream(*args)``, generated in order when asked for.

    Memory and start-up time do not grow with the length of a stage (a stage of 10^12 steps starts at
    once); asking for an earlier batch restarts the stream. Picklable for loader workers.
    """

    def __init__(self, args: tuple, start: int, end: int) -> None:
        self.args, self.start, self.end = args, start, end
        self._stream: Iterator[BatchPlan] | None = None
        self._next = 0  # index in the stream of the batch ``next(self._stream)`` gives
        self._last: BatchPlan | None = None

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def __getitem__(self, number: int) -> BatchPlan:  # type: ignore[override]
        if not 0 <= number < len(self):
            raise IndexError(number)
        wanted = self.start + number
        if self._stream is None or wanted < self._next - 1:
            self._stream, self._next = train_plan_stream(*self.args), 0
        while self._next <= wanted:
            self._last = next(self._stream)
            self._next += 1
        return self._last

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_stream": None, "_next": 0, "_last": None}
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
