"""Training a generator through the shared loop: its token dataset, its losses, its output file.

The layout a generator is built with comes from the token dataset's ``index.json``; what the spec
declares about it (``vocab_size``, ``grid``, ``num_classes``, ``class_conditional``) is checked
against the shards before any work, one line per mismatch.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from omnipipe.data.sampler import train_plan
from omnipipe.errors import OmnipipeError
from omnipipe.generate.checkpoint import save_generator
from omnipipe.generate.contract import TokenBatch, TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.token_dataset import INDEX_FILE, TokenDataset
from omnipipe.registry import Registry
from omnipipe.spec.data import MixSpec
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.generate import GeneratorEntrySpec
from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import LoopSettings
from omnipipe.train.optimizer import make_optimizer, make_scheduler
from omnipipe.train.precision import Precision
from omnipipe.train.task import Evaluation, StepLoss, TrainingTask


STATISTICS_ROWS = 4096  # train sequences read at a time by ``fit_token_statistics``


class GeneratorMismatch(OmnipipeError):
    """A generator spec that does not fit its token dataset."""


def generator_layout(entry: GeneratorEntrySpec, data: TokenDataset, where: str, token_kind: str | None) -> TokenLayout:
    """The layout to build the generator with; GeneratorMismatch when the spec's declarations contradict the shards."""
    layout, index = data.layout, data.root / INDEX_FILE
    problems = []
    if token_kind is not None and token_kind != layout.kind:
        problems.append(f"{where}.model.type: '{entry.model.type}' models {token_kind}, {index} holds {layout.kind}")
    if entry.vocab_size is not None and layout.kind == "codes" and entry.vocab_size != layout.vocab_size:
        problems.append(f"{where}.vocab_size: {entry.vocab_size} does not match the vocabulary {layout.vocab_size} of {index}")
    if entry.latent_channels is not None and layout.kind == "latents" and entry.latent_channels != layout.channels:
        problems.append(f"{where}.latent_channels: {entry.latent_channels} does not match the {layout.channels} latent channels of {index}")
    if entry.grid is not None and len(layout.segments) == 1 and tuple(entry.grid) != layout.grid:
        problems.append(f"{where}.grid: {list(entry.grid)} does not match the grid {list(layout.grid)} of {index}")
    if entry.num_classes is not None and entry.num_classes != len(data.classes):
        problems.append(f"{where}.num_classes: {entry.num_classes} does not match the {len(data.classes)} classes of {index}")
    if entry.class_conditional:
        unlabelled = int((data.split("train").labels < 0).sum())
        if unlabelled or not data.classes:
            problems.append(
                f"{where}: a class-conditional generator needs labelled data, but {unlabelled} of "
                f"{len(data.split('train'))} train sequences in {index} have no label (select classes in "
                f"generate.tokens or set class_conditional: false)"
            )
    if problems:
        raise GeneratorMismatch("\n".join(problems))
    return layout if entry.class_conditional else layout.with_classes(0)


def generator_loop_settings(
    spec: Experiment, name: str, *, precision: Precision = "auto", device: str | None = None, compile: bool = False
) -> LoopSettings:
    train, paths = spec.generate.generators[name].train, GenerationPaths.of(spec)
    settings = LoopSettings.of(
        train, name, checkpoints=paths.checkpoints(name), live_dir=paths.live_dir(name), record_dir=paths.generator(name),
        seed=spec.seed, precision=precision, device=device, compile=compile,
    )
    return dataclasses.replace(settings, fsdp=train.fsdp)


class GeneratorTask(TrainingTask):
    """One entry of ``generate.generators``: its component on its token dataset."""

    summary_keys = ("val/loss/ce", "val/loss/mse", "val/bits_per_token")

    def __init__(self, spec: Experiment, name: str, registry: Registry, ctx: DistContext) -> None:
        self.spec, self.name, self.ctx = spec, name, ctx
        self.entry = entry = spec.generate.generators[name]
        self.data = TokenDataset.load(GenerationPaths.of(spec).tokens(entry.tokens))
        cls = registry.get("generator", entry.model.type).cls
        layout = generator_layout(entry, self.data, f"generate.generators.{name}", getattr(cls, "token_kind", None))
        self.model = registry.build("generator", entry.model, layout=layout).to(ctx.device)
        fit = getattr(self.model, "fit_token_statistics", None)
        if fit is not None:  # e.g. ldm's latent scaling: every train sequence, before the loop copies the EMA
            split, rows = self.data.split("train"), STATISTICS_ROWS
            fit(split.tokens(np.arange(start, min(start + rows, len(split)))) for start in range(0, len(split), rows))
        self.optimizer = make_optimizer(entry.train.optimizer, self.model.parameters())
        self.scheduler = make_scheduler(self.optimizer, entry.train.schedule, entry.train.steps)

    def fsdp_units(self) -> list[nn.Module]:
        """Every block of the model's ``blocks`` lists (the transformer's layers), each sharded on its own."""
        lists = [module for name, module in self.model.named_modules() if name.split(".")[-1] == "blocks"]
        return [block for blocks in lists if isinstance(blocks, nn.ModuleList) for block in blocks]

    def settings(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "seed": self.spec.seed,
            "model": entry.model.model_dump(mode="json"),
            "class_conditional": entry.class_conditional,
            "train": entry.train.model_dump(mode="json"),
            "tokens": self.data.info["fingerprint"],
        }

    def inputs(self) -> list[Path]:
        return [self.data.root / INDEX_FILE]

    def _to_device(self, batch: TokenBatch) -> TokenBatch:
        labels = batch.labels if self.model.layout.conditional else batch.labels.new_full(batch.labels.shape, -1)
        return TokenBatch(batch.tokens.to(self.ctx.device, non_blocking=True), labels.to(self.ctx.device))

    def batches(self, start: int) -> Iterator[TokenBatch]:
        """Shuffled batches of train sequences, each rank its slice of every global batch (``data/sampler``)."""
        split, train = self.data.split("train"), self.entry.train
        kind, resolution = self.data.info["kind"], tuple(self.data.info["resolution"])
        plans = train_plan({kind: len(split)}, [resolution], train.batch_size, MixSpec(), self.spec.seed, 0,
                           self.ctx.rank, self.ctx.world_size, train.steps * train.grad_accum)  # fmt: skip
        for plan in plans[start:]:
            yield self._to_device(split.batch(np.asarray(plan.indices)))

    def loss(self, net: nn.Module, batch: TokenBatch, step: int) -> StepLoss:
        return StepLoss(net(batch))

    def evaluate(self, model: nn.Module, step: int) -> Evaluation:
        """Mean val losses over the first ``eval_batches`` batches; bits per token for likelihood models."""
        split, train = self.data.split("val"), self.entry.train
        rows = split.originals()[: train.eval_batches * train.batch_size]
        sums: dict[str, float] = {}
        for start in range(0, len(rows), train.batch_size):
            batch = self._to_device(split.batch(rows[start : start + train.batch_size]))
            values = {f"val/loss/{k}": float(v) for k, v in model.losses(batch).items()}
            if hasattr(model, "token_nll"):
                values["val/bits_per_token"] = float(model.token_nll(batch).mean()) / math.log(2)
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value * len(batch.labels)
        return Evaluation({key: value / len(rows) for key, value in sums.items()})

    def write_output(self, model: nn.Module) -> Path:
        path = GenerationPaths.of(self.spec).model_file(self.name)
        save_generator(path, model, self.entry.model.model_dump(mode="json"))
        return path
