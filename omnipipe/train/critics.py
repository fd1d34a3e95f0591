"""The critics of a tokenizer stage's ``gan`` loss: which judge a batch, with what weight, and their update.

A batch is judged by the critic of its kind (``critic_for``: ``image`` for T = 1, ``video`` for clips,
either standing in alone) and, for clips with the image critic's ``on_clips``, by the image critic on
one random frame per clip or on every frame (the OmniTokenizer reference's image critic, without and
with ``--apply_allframes``). Each critic's weight (``train.discriminators.<kind>.weight``, replaced by
the stage's ``discriminator_weights``) scales its generator term and its own loss; a critic of weight
0 does not judge at all, so it is not trained either.

The update (``Critics.update``) clears every critic's gradients, backpropagates the weighted sum of
the judging critics' losses, optionally clips their gradient norm, and steps — or skips the step when
that loss is below ``skip_below`` (the reference's ``--disloss_check_thres``). The critics' learning
rate is the stage's times ``lr_multiplier``, constant or, with ``warmup_steps``, on the stage's
schedule with that warm-up (stepped once per optimizer step by ``after_step``).

The random frames come from ``StepDraws`` (seed, rank, step and n-th draw of the step), not from torch's
global generator, so a resumed run draws what the uninterrupted one did.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from omnipipe.losses.gan import GANLoss, Stats, critic_for
from omnipipe.nn.frames import one_frame_per_clip
from omnipipe.registry import Registry
from omnipipe.spec.train import DiscriminatorOptimizerSpec, StageSpec, TrainSpec
from omnipipe.train.optimizer import make_optimizer, make_scheduler
from omnipipe.train.step_draws import StepDraws


@dataclass(frozen=True)
class Judge:
    """One critic judging one batch: the prefix of its logged keys, the module, its weight, what it sees."""

    label: str  # "" for the critic of the batch's kind, "image_frames" for the image critic on clip frames
    critic: nn.Module
    weight: float
    one_frame: bool  # one random frame per clip (else the batch as it is; a 2-D critic folds the frames)

    def view(
        self, reconstruction: torch.Tensor, target: torch.Tensor, draws: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W)`` pixels as this critic sees them (the same frames of both)."""
        if self.one_frame:
            return one_frame_per_clip(reconstruction, target, generator=draws)  # type: ignore[return-value]
        return reconstruction, target

    def keyed(self, stats: Stats) -> Stats:
        return {f"{self.label}/{key}" if self.label else key: value for key, value in stats.items()}


class Critics:
    """The discriminators of a stage with their weights, their optimizer and (optionally) its schedule."""

    def __init__(
        self,
        modules: nn.ModuleDict,
        weights: Mapping[str, float],
        on_clips: str | None,
        optimizer: torch.optim.Optimizer,
        settings: DiscriminatorOptimizerSpec,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        draws: StepDraws | None = None,
    ) -> None:
        self.modules, self.weights, self.on_clips = modules, dict(weights), on_clips
        self.optimizer, self.settings, self.scheduler = optimizer, settings, scheduler
        self.draws = draws or StepDraws(seed=0, rank=0)

    @classmethod
    def of_stage(
        cls, train: TrainSpec, stage: StageSpec, registry: Registry, device: torch.device, draws: StepDraws | None = None
    ) -> Critics:
        """``train.discriminators`` built on ``device``, weighted and optimised as ``stage`` says."""
        modules = nn.ModuleDict({key: registry.build("discriminator", entry) for key, entry in train.discriminators.items()})
        modules = modules.to(device)
        weights = {key: stage.discriminator_weights.get(key, entry.weight) for key, entry in train.discriminators.items()}
        image = train.discriminators.get("image")
        settings = stage.discriminator_optimizer
        scaled = stage.optimizer.model_copy(update={"lr": stage.optimizer.lr * settings.lr_multiplier})
        optimizer = make_optimizer(scaled, modules.parameters())
        scheduler = None
        if settings.warmup_steps is not None:
            schedule = stage.schedule.model_copy(update={"warmup_steps": settings.warmup_steps})
            scheduler = make_scheduler(optimizer, schedule, stage.steps)
        on_clips = image.on_clips if image is not None else None
        return cls(modules, weights, on_clips, optimizer, settings, scheduler, draws)

    def judges(self, pixels: torch.Tensor) -> list[Judge]:
        """The critics of weight > 0 that judge this ``(B, C, T, H, W)`` batch."""
        key = critic_for(self.modules, pixels)
        judges = [Judge("", self.modules[key], self.weights[key], one_frame=False)]
        if key == "video" and "image" in self.modules and self.on_clips is not None:
            judges.append(Judge("image_frames", self.modules["image"], self.weights["image"], self.on_clips == "one_frame"))
        return [judge for judge in judges if judge.weight > 0]

    def generator_loss(
        self,
        gan: GANLoss,
        reconstruction: torch.Tensor,
        target: torch.Tensor,
        step: int,
        recon_loss: torch.Tensor | None = None,
        last_layer: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Stats]:
        """Σ weight · ``gan.generator_loss`` over the judging critics (each with its own adaptive weight)."""
        total, stats = torch.zeros((), device=target.device), {}
        for index, judge in enumerate(self.judges(target)):
            fake, real = judge.view(reconstruction, target, self.draws(step) if judge.one_frame else None)
            loss, judged = gan.generator_loss(fake, real, judge.critic, recon_loss, last_layer)
            total = judge.weight * loss if index == 0 else total + judge.weight * loss
            stats.update(judge.keyed(judged))
        return total, stats

    def update(self, gan: GANLoss, reconstruction: torch.Tensor, target: torch.Tensor, step: int) -> Stats:
        """One update of the critics judging this batch from their weighted loss only (see the module doc)."""
        self.modules.zero_grad(set_to_none=True)
        judges = self.judges(target)
        if not judges:
            return {}
        total, stats = torch.zeros(()), {}
        for index, judge in enumerate(judges):
            fake, real = judge.view(reconstruction, target, self.draws(step) if judge.one_frame else None)
            loss, judged = gan.discriminator_loss(fake, real, judge.critic)
            total = judge.weight * loss if index == 0 else total + judge.weight * loss
            stats.update(judge.keyed(judged))
        if self.settings.skip_below is not None:
            skipped = float(total.detach()) < self.settings.skip_below
            stats["d_skipped"] = torch.tensor(float(skipped))
            if skipped:
                return stats
        total.backward()
        if self.settings.grad_clip is not None:
            stats["d_grad_norm"] = torch.nn.utils.clip_grad_norm_(self.modules.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        return stats

    def after_step(self) -> None:
        """Advance the critics' schedule by one optimizer step (whether or not they were updated)."""
        if self.scheduler is not None:
            with warnings.catch_warnings():  # the critics may not have stepped (skipped, before start_step): that is fine
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.scheduler.step()
