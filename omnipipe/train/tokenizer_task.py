"""Training a tokenizer stage: the objective, the GAN's discriminator step, the VQ's codebook sync across
ranks, and starting from an earlier stage (``init_from``, temporal inflation, bottleneck swap)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from omnipipe.data.loader import Batch, make_loader
from omnipipe.losses.gan import discriminator_for, discriminator_step
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.train import StageSpec
from omnipipe.train.distributed import DistContext, sync_codebook
from omnipipe.train.initialise import initialise_from, stage_is_video_start
from omnipipe.train.loop import TrainingError
from omnipipe.train.objective import Objective
from omnipipe.train.optimizer import make_optimizer, make_scheduler
from omnipipe.train.paths import StagePaths
from omnipipe.train.task import Evaluation, StepLoss, TrainingTask
from omnipipe.train.val_preview import ReconstructionPreview, batch_key


def stage_model_spec(spec: Experiment, stage: StageSpec) -> ModelSpec:
    """The model of a stage: the spec's, with the stage's bottleneck when it swaps it (and every later stage)."""
    quantizer = spec.model.quantizer
    for earlier in spec.train.stages.values():
        if earlier.quantizer is not None:
            quantizer = earlier.quantizer
        if earlier is stage:
            break
    return spec.model.model_copy(update={"quantizer": quantizer})


def _last_layer(model: Tokenizer, pixels: torch.Tensor) -> torch.Tensor | None:
    """The weight that produces these pixels, for the GAN's adaptive weight (None if the patchifier has none)."""
    output_weight = getattr(model.patchifier, "output_weight", None)
    return output_weight(pixels.shape[2]) if output_weight is not None else None


class TokenizerTask(TrainingTask):
    """One stage of ``train.stages``: reconstruction objective, optional GAN, on the prepared data."""

    find_unused_parameters = True  # image batches leave the temporal patch weights unused
    summary_keys = ("val/psnr", "val/lpips", "codebook/usage", "codebook/perplexity")

    def __init__(
        self, spec: Experiment, stage_name: str, registry: Registry, ctx: DistContext, num_workers: int = 0
    ) -> None:
        self.spec, self.stage_name, self.ctx, self.num_workers = spec, stage_name, ctx, num_workers
        self.stage = stage = spec.train.stages[stage_name]
        model = Tokenizer.from_spec(stage_model_spec(spec, stage), registry)
        if stage.init_from is not None:
            previous = spec.train.stages[stage.init_from]
            initialise_from(
                model,
                StagePaths.of(spec, stage.init_from).model_file,
                inflate_temporal=stage_is_video_start(previous.data, stage.data),
                keep_quantizer=stage_model_spec(spec, previous).quantizer == model.spec.quantizer,
            )
        self.model = model.to(ctx.device)

        built = {name: registry.build("loss", entry) for name, entry in spec.train.losses.items()}
        self.adversarial = {name: module for name, module in built.items() if hasattr(module, "generator_loss")}
        self.objective = Objective(
            {name: (spec.train.losses[name], module) for name, module in built.items() if name not in self.adversarial},
            dict(spec.train.quantizer_loss_weights),
        ).to(ctx.device)
        if self.adversarial and not spec.train.discriminators:
            raise TrainingError(f"loss '{next(iter(self.adversarial))}' needs train.discriminators (image and/or video)")
        self.discriminators = nn.ModuleDict(
            {key: registry.build("discriminator", entry) for key, entry in spec.train.discriminators.items()}
            if self.adversarial
            else {}
        ).to(ctx.device)

        self.optimizer = make_optimizer(stage.optimizer, model.parameters())
        self.scheduler = make_scheduler(self.optimizer, stage.schedule, stage.steps)
        self.d_optimizer = make_optimizer(stage.optimizer, self.discriminators.parameters()) if self.adversarial else None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (reconstruction, target) of the last micro-batch
        self._preview: ReconstructionPreview | None = None  # built on first use (rank 0 evaluates)

    def settings(self) -> dict[str, Any]:
        spec, stage = self.spec, self.stage
        return {
            "seed": spec.seed,
            "data": spec.data.model_dump(mode="json"),
            "model": stage_model_spec(spec, stage).model_dump(mode="json"),
            "losses": {k: v.model_dump(mode="json") for k, v in spec.train.losses.items()},
            "quantizer_loss_weights": spec.train.quantizer_loss_weights,
            "discriminators": {k: v.model_dump(mode="json") for k, v in spec.train.discriminators.items()},
            "stage": stage.model_dump(mode="json", exclude={"eval_every"}),  # evaluation leaves the weights alone
        }

    def inputs(self) -> list[Path]:
        """The prepared data and, with ``init_from``, the earlier stage's model."""
        files = [Path(self.spec.data.prepared_dir)]
        if self.stage.init_from is not None:
            files.append(StagePaths.of(self.spec, self.stage.init_from).model_file)
        return files

    def batches(self, start: int) -> Iterator[Batch]:
        """The stage's training batches of this rank, from the ``start``-th on (one planned stream per stage)."""
        total = self.stage.steps * self.stage.grad_accum
        yield from make_loader(
            self.spec, self.stage, "train", self.ctx.rank, self.ctx.world_size, num_workers=self.num_workers,
            num_batches=total - start, start_batch=start,
        )  # fmt: skip

    def loss(self, net: nn.Module, batch: Batch, step: int) -> StepLoss:
        target = batch.pixels.to(self.ctx.device, non_blocking=True)  # (B, C, T, H, W)
        out = net(target)
        recon_loss, terms = self.objective(out.reconstruction, target, out.quantizer, step)
        logged: dict[str, float] = {f"codebook/{name}": float(value) for name, value in out.quantizer.stats.items()}
        for name, gan in self.adversarial.items():
            entry = self.spec.train.losses[name]
            if step >= entry.start_step:
                critic = discriminator_for(self.discriminators, target)
                g_loss, g_stats = gan.generator_loss(
                    out.reconstruction, target, critic, recon_loss, _last_layer(self.model, target)
                )
                terms[name] = entry.weight * g_loss
                logged.update({f"{name}/{k}": float(v) for k, v in g_stats.items()})
        self._last = (out.reconstruction, target)
        logged[f"loss_by_batch/{batch_key(target)}"] = float(sum(terms.values()).detach())
        return StepLoss(terms, logged)

    def evaluate(self, model: nn.Module, step: int) -> Evaluation:
        """Reconstruction PSNR (and LPIPS when its weights are present) and a picture of fixed val batches."""
        if self._preview is None:
            self._preview = ReconstructionPreview.of_stage(self.spec, self.stage, self.ctx.device)
        return self._preview(model)

    def after_update(self, step: int) -> dict[str, float]:
        """The discriminator step on the last micro-batch, from its own loss only."""
        logged: dict[str, float] = {}
        if self.d_optimizer is None or self._last is None:
            return logged
        reconstruction, target = self._last
        for name, gan in self.adversarial.items():
            if step >= self.spec.train.losses[name].start_step:
                critic = discriminator_for(self.discriminators, target)
                stats = discriminator_step(critic, self.d_optimizer, gan, reconstruction, target)
                logged.update({f"{name}/{k}": float(v) for k, v in stats.items()})
        self._last = None
        return logged

    def extra_modules(self) -> dict[str, nn.Module]:
        return {"discriminators": self.discriminators}

    def extra_states(self) -> dict[str, Any]:
        return {"d_optimizer": self.d_optimizer} if self.d_optimizer is not None else {}

    def join(self, ctx: DistContext) -> None:
        """Sum the VQ's EMA statistics over ranks and share rank 0's dead-code restarts: codebooks stay equal."""
        sync_codebook(self.model.quantizer)

    def write_output(self, model: nn.Module) -> Path:
        path = StagePaths.of(self.spec, self.stage_name).model_file
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return path
