"""The contract between the generic training loop and what it trains (a tokenizer, a generator, …).

The loop (``omnipipe.train.loop.run_training``) owns everything that is the same for every model:
seeding, DDP wrapping or FSDP2 sharding, gradient accumulation, clipping, autocast, EMA, the learning-rate schedule,
the non-finite-loss guard, checkpoints and resume, dvclive and the progress bar. A task owns the rest:
what the model is, what it reads, how a batch becomes a loss, and how the result is written.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from omnipipe.train.distributed import DistContext


@dataclass
class StepLoss:
    """What one micro-batch gives the loop.

    terms: the weighted loss terms by name; their sum is what is minimised (each is logged as
        ``loss/<name>``, averaged over the micro-batches of a step).
    logged: extra scalars for the live log (averaged over the micro-batches that report each key, so a
        key reported only for some batches — e.g. per kind or resolution — gives its own sparse series).
    """

    terms: dict[str, torch.Tensor]
    logged: dict[str, float] = field(default_factory=dict)


@dataclass
class Evaluation:
    """What a periodic evaluation gives the live log: scalars (one series each) and images (uint8 (H, W, 3))."""

    scalars: dict[str, float] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)


class TrainingTask(ABC):
    """One trainable thing, built by a factory the loop calls after seeding and joining the process group.

    Attributes the task sets in its ``__init__``:

    model: the trained network, already on ``ctx.device``. The loop wraps it in DDP (or shards it), clips its
        gradients, keeps its EMA, checkpoints it as ``model`` and passes it (or its EMA) to
        ``write_output``.
    optimizer: updates ``model``; the loop zeroes it, steps it once per ``grad_accum`` micro-batches and
        checkpoints it.
    scheduler: stepped by the loop after every optimizer step (``None``: constant learning rate).
    find_unused_parameters: passed to DDP (True when some batches leave parameters unused).
    summary_keys: logged keys (besides ``loss/total``) whose last value the end-of-stage line shows.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    find_unused_parameters: bool = False
    summary_keys: tuple[str, ...] = ()

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """JSON-able settings that determine the result; a checkpoint is resumed only when they match.

        The loop adds the code version and the content hashes of ``inputs()`` itself.
        """

    def inputs(self) -> list[Path]:
        """Files whose content determines the result (initial weights, prepared data, token shards)."""
        return []

    @abstractmethod
    def batches(self, start: int) -> Iterator[Any]:
        """This rank's micro-batches from the ``start``-th on (the ``start`` already consumed are skipped)."""

    @abstractmethod
    def loss(self, net: nn.Module, batch: Any, step: int) -> StepLoss:
        """The loss terms of one micro-batch; ``net`` is ``model`` or its DDP wrapper (call it for the forward).

        Runs inside the loop's autocast; the loop sums the terms, checks them and backpropagates.
        """

    def after_update(self, step: int) -> dict[str, float]:
        """Work after each optimizer step (e.g. a discriminator update), outside autocast; scalars to log."""
        return {}

    def evaluate(self, model: nn.Module, step: int) -> Evaluation:
        """Every ``eval_every`` steps on rank 0, under ``no_grad`` with ``model`` (the EMA model when there
        is one) in eval mode: validation scalars and pictures for the live log."""
        return Evaluation()

    def extra_modules(self) -> dict[str, nn.Module]:
        """Other modules to checkpoint by name (e.g. ``discriminators``); not ``model`` or ``ema``."""
        return {}

    def extra_states(self) -> dict[str, Any]:
        """Other objects with ``state_dict``/``load_state_dict`` to checkpoint by name (e.g. a second optimizer)."""
        return {}

    def fsdp_units(self) -> list[nn.Module]:
        """Submodules of ``model`` FSDP2 shards as units of their own (e.g. the transformer blocks), when the stage
        asks for FSDP; the rest of ``model`` is one more unit. None listed: the whole model is one unit."""
        return []

    def join(self, ctx: DistContext) -> None:
        """Called once before DDP wrapping or sharding in a multi-process run (e.g. sync a codebook's statistics)."""

    @abstractmethod
    def write_output(self, model: nn.Module) -> Path:
        """Write the stage's result from ``model`` (the EMA model when there is one), atomically; its path."""
