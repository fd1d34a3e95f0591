"""``omnipipe train --stage NAME``: one tokenizer stage through the generic loop, resumable, data-parallel."""
from __future__ import annotations

from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import RunSpec
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.paths import StagePaths
from omnipipe.train.precision import Precision
from omnipipe.train.tokenizer_task import TokenizerTask


def run_loop_settings(
    run: RunSpec, name: str, paths: StagePaths, seed: int, *, precision: Precision = "auto", device: str | None = None
) -> LoopSettings:
    """The loop settings of any stage described by a ``RunSpec`` that writes under ``paths``."""
    return LoopSettings(
        name=name,
        steps=run.steps,
        checkpoints=paths.checkpoints,
        live_dir=paths.live_dir,
        seed=seed,
        grad_accum=run.grad_accum,
        grad_clip=run.grad_clip,
        ema_decay=run.ema_decay,
        checkpoint_every=run.checkpoint_every,
        keep_last=run.keep_last,
        precision=precision,
        device=device,
    )


def stage_loop_settings(
    spec: Experiment, stage_name: str, *, precision: Precision = "auto", device: str | None = None
) -> LoopSettings:
    """The loop settings of a tokenizer stage of ``train.stages``."""
    stage = spec.train.stages[stage_name]
    return run_loop_settings(stage, stage_name, StagePaths.of(spec, stage_name), spec.seed, precision=precision, device=device)


def train_stage(
    spec: Experiment,
    stage_name: str,
    registry: Registry,
    *,
    resume: bool = False,
    num_workers: int = 0,
    precision: Precision = "auto",
    device: str | None = None,
) -> StagePaths:
    """Run one stage to its last step; rank 0 writes checkpoints, live metrics and the final model."""
    settings = stage_loop_settings(spec, stage_name, precision=precision, device=device)
    run_training(settings, lambda ctx: TokenizerTask(spec, stage_name, registry, ctx, num_workers), resume=resume)
    return StagePaths.of(spec, stage_name)
