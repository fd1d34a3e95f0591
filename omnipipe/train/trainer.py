"""``omnipipe train --stage NAME``: one tokenizer stage through the generic loop, resumable, data-parallel."""
from __future__ import annotations

from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.paths import StagePaths
from omnipipe.train.precision import Precision
from omnipipe.train.tokenizer_task import TokenizerTask


def stage_loop_settings(
    spec: Experiment, stage_name: str, *, precision: Precision = "auto", device: str | None = None, compile: bool = False
) -> LoopSettings:
    """The loop settings of a tokenizer stage of ``train.stages``."""
    paths = StagePaths.of(spec, stage_name)
    return LoopSettings.of(
        spec.train.stages[stage_name], stage_name, checkpoints=paths.checkpoints, live_dir=paths.live_dir,
        record_dir=paths.out_dir, seed=spec.seed, precision=precision, device=device, compile=compile,
    )


def train_stage(
    spec: Experiment,
    stage_name: str,
    registry: Registry,
    *,
    resume: bool = False,
    restart: bool = False,
    num_workers: int = 0,
    precision: Precision = "auto",
    device: str | None = None,
    compile: bool = False,
) -> StagePaths:
    """Run one stage to its last step; rank 0 writes checkpoints, live metrics and the final model.

    ``resume``/``restart``: what to do with the stage's existing checkpoints (see ``run_training``);
    ``compile``: through ``torch.compile`` (``omnipipe.train.compiled``).
    """
    settings = stage_loop_settings(spec, stage_name, precision=precision, device=device, compile=compile)
    run_training(settings, lambda ctx: TokenizerTask(spec, stage_name, registry, ctx, num_workers), resume=resume, restart=restart)
    return StagePaths.of(spec, stage_name)
