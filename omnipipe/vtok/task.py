"""Training a VTok stage on the shared loop: latent loss + pixel losses on video clips, OmniTokenizer frozen or fine-tuned."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import nn

from omnipipe.data.loader import Batch, make_loader
from omnipipe.errors import SpecError
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec
from omnipipe.train.distributed import DistContext, sync_codebook
from omnipipe.train.objective import Objective
from omnipipe.train.optimizer import make_optimizer, make_scheduler
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.paths import StagePaths
from omnipipe.train.precision import Precision
from omnipipe.train.task import StepLoss, TrainingTask
from omnipipe.vtok.causal import check_temporal_causal
from omnipipe.vtok.model import VTok


def vtok_data_stage(spec: Experiment, name: str) -> StageSpec:
    """The loader settings of VTok stage ``name``: video clips only."""
    train = spec.vtok[name].train
    return StageSpec(data="videos", steps=train.steps, batch_size=train.batch_size, resolutions=train.resolutions)


class VTokTask(TrainingTask):
    """One ``vtok`` entry: VTok parts (and, with ``finetune``, the OmniTokenizer) trained on the prepared clips."""

    summary_keys = ("residual/usage", "residual/perplexity")

    def __init__(self, spec: Experiment, name: str, registry: Registry, ctx: DistContext, num_workers: int = 0) -> None:
        self.spec, self.name, self.ctx, self.num_workers = spec, name, ctx, num_workers
        self.entry = entry = spec.vtok[name]
        self.base_file = StagePaths.of(spec, entry.tokenizer).model_file
        base = Tokenizer.from_checkpoint(self.base_file, registry, ctx.device)
        check_temporal_causal(base, entry.tokenizer, spec.data.clip_frames, tuple(spec.data.resolutions[0]))
        self.finetune = entry.tokenizer_training == "finetune"
        self.model = VTok(entry.model, base, registry, finetune_base=self.finetune).to(ctx.device)
        built = {key: (loss, registry.build("loss", loss)) for key, loss in entry.losses.items()}
        adversarial = [key for key, (_, module) in built.items() if hasattr(module, "generator_loss")]
        if adversarial:
            raise SpecError(f"vtok.{name}.losses.{adversarial[0]}: adversarial losses are not supported for VTok")
        self.objective = Objective(built, dict(entry.quantizer_loss_weights)).to(ctx.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(entry.train.optimizer, trainable)
        self.scheduler = make_scheduler(self.optimizer, entry.train.schedule, entry.train.steps)

    def settings(self) -> dict[str, Any]:
        return {
            "seed": self.spec.seed,
            "data": self.spec.data.model_dump(mode="json"),
            "vtok": self.entry.model_dump(mode="json", exclude={"compare"}),
        }

    def inputs(self) -> list[Path]:
        return [self.base_file]

    def batches(self, start: int) -> Iterator[Batch]:
        total = self.entry.train.steps * self.entry.train.grad_accum
        yield from make_loader(
            self.spec, vtok_data_stage(self.spec, self.name), "train", self.ctx.rank, self.ctx.world_size,
            num_workers=self.num_workers, num_batches=total - start, start_batch=start,
        )  # fmt: skip

    def loss(self, net: nn.Module, batch: Batch, step: int) -> StepLoss:
        target = batch.pixels.to(self.ctx.device, non_blocking=True)  # (B, C, T, H, W)
        out = net(target)
        _, terms = self.objective(out.reconstruction, target, out.residual, step)
        terms["latent"] = self.entry.latent_weight * F.mse_loss(out.predicted.float(), out.target.detach().float())
        if self.finetune:
            weights = self.entry.quantizer_loss_weights
            terms.update({f"tokenizer_{key}": weights.get(key, 1.0) * value.float() for key, value in out.key.losses.items()})
        logged = {f"residual/{key}": float(value) for key, value in out.residual.stats.items()}
        return StepLoss(terms, logged)

    def join(self, ctx: DistContext) -> None:
        sync_codebook(self.model.residual_quantizer)
        if self.finetune:
            sync_codebook(self.model.base.quantizer)

    def write_output(self, model: nn.Module) -> Path:
        path = StagePaths.of(self.spec, self.name).model_file
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        return path


def train_vtok(
    spec: Experiment, name: str, registry: Registry, *, resume: bool = False, num_workers: int = 0,
    precision: Precision = "auto", device: str | None = None, compile: bool = False,
) -> StagePaths:  # fmt: skip
    """Run VTok stage ``name`` to its last step through the shared loop; rank 0 writes the model."""
    paths = StagePaths.of(spec, name)
    settings = LoopSettings.of(
        spec.vtok[name].train, name, checkpoints=paths.checkpoints, live_dir=paths.live_dir, record_dir=paths.out_dir,
        seed=spec.seed, precision=precision, device=device, compile=compile,
    )
    run_training(settings, lambda ctx: VTokTask(spec, name, registry, ctx, num_workers), resume=resume)
    return paths
