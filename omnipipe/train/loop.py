"""The training loop every trainable component shares (tokenizers, generators): see ``TrainingTask``.

Per run: seed, join the process group (torchrun), build the task, resume its newest checkpoint when
the fingerprint matches, then per step: ``grad_accum`` micro-batches (DDP's ``no_sync`` on all but
the last) under autocast, a non-finite-loss guard, gradient clipping, the optimizer and schedule
step, the weight EMA, the task's ``after_update``, the live log, periodic evaluation and checkpoints
(rank 0 writes; every rank's RNG streams are saved). At the end the ranks' replicas are compared and
rank 0 writes the output (the EMA model when there is one).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from omnipipe.errors import OmnipipeError
from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.distributed import DistContext, init_distributed
from omnipipe.train.ema import WeightEMA
from omnipipe.train.fingerprint import run_fingerprint
from omnipipe.train.live import LiveLog
from omnipipe.train.precision import Precision, autocast, grad_scaler, resolve_precision
from omnipipe.train.seed import rng_state, seed_everything, set_rng_state
from omnipipe.train.task import TrainingTask


class TrainingError(OmnipipeError):
    """Training cannot go on (e.g. a non-finite loss)."""


@dataclass(frozen=True)
class LoopSettings:
    """How a stage runs; nothing here is specific to a kind of model.

    ``eval_every``: call the task's ``evaluate`` every this many steps and at the last one (None: never).
    ``precision``: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32``, ``bf16`` or ``fp16``
    (autocast with loss scaling). ``device``: e.g. ``cpu``, ``cuda`` (None: CUDA when available).
    """

    name: str
    steps: int
    checkpoints: Path
    live_dir: Path
    seed: int = 0
    grad_accum: int = 1
    grad_clip: float | None = None
    ema_decay: float | None = None
    checkpoint_every: int = 100
    keep_last: int = 2
    eval_every: int | None = None
    precision: Precision = "auto"
    device: str | None = None


@dataclass
class LoopResult:
    """Where the output went, the step reached, the last logged values and the wall time of this run."""

    output: Path | None
    step: int
    last: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


def run_training(
    settings: LoopSettings, build: Callable[[DistContext], TrainingTask], *, resume: bool = False
) -> LoopResult:
    """Train the task ``build(ctx)`` returns (called after seeding) to ``settings.steps``; see the module doc."""
    started = time.perf_counter()
    ctx = init_distributed(settings.device)
    seed_everything(settings.seed)
    task = build(ctx)
    model = task.model
    if ctx.world_size > 1:
        task.join(ctx)
    precision = resolve_precision(settings.precision, ctx.device)
    scaler = grad_scaler(precision, ctx.device)
    ema = WeightEMA(model, settings.ema_decay) if settings.ema_decay is not None else None
    modules: dict[str, nn.Module] = {"model": model, **task.extra_modules()}
    if ema is not None:
        modules["ema"] = ema.shadow
    states: dict[str, Any] = {"optimizer": task.optimizer, "scheduler": task.scheduler, "scaler": scaler}
    states = {name: value for name, value in {**states, **task.extra_states()}.items() if value is not None}
    store = CheckpointStore(settings.checkpoints, settings.keep_last)
    run_id = run_fingerprint({"task": task.settings(), "precision": precision})
    print_fn = tqdm.write if ctx.is_main else (lambda _: None)

    step, consumed = 0, 0
    latest = store.latest() if resume else None
    if latest is not None and store.state(latest)["fingerprint"] != run_id:
        print_fn(f"{latest}: written by another configuration or code version of stage '{settings.name}'; starting over")
        latest = None
    if latest is None:
        if ctx.is_main:
            store.clear()
    else:
        saved = store.load(latest, modules)
        for name, value in states.items():
            value.load_state_dict(saved[name])
        set_rng_state(saved["rng"][ctx.rank] if ctx.rank < len(saved["rng"]) else saved["rng"][0])
        step, consumed = saved["step"], saved["batches_consumed"]
        print_fn(f"resuming stage '{settings.name}' at step {step} from {latest}")

    # Buffers are not broadcast: tasks keep them equal across ranks themselves (e.g. a synced codebook).
    net: nn.Module = (
        DistributedDataParallel(model, broadcast_buffers=False, find_unused_parameters=task.find_unused_parameters)
        if ctx.world_size > 1
        else model
    )
    live = LiveLog(settings.live_dir, resume=latest is not None) if ctx.is_main else None
    stream = task.batches(consumed)
    last: dict[str, float] = {}
    with tqdm(total=settings.steps, initial=step, desc=settings.name, disable=not ctx.is_main, dynamic_ncols=True) as bar:
        model.train()
        while step < settings.steps:
            step_started = time.perf_counter()
            data_wait = 0.0
            task.optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            for micro in range(settings.grad_accum):
                fetched = time.perf_counter()
                batch = next(stream)
                consumed += 1
                data_wait += time.perf_counter() - fetched
                sync = micro == settings.grad_accum - 1 or ctx.world_size == 1
                with (nullcontext() if sync else net.no_sync()), autocast(precision, ctx.device):
                    result = task.loss(net, batch, step)
                    total = sum(result.terms.values())
                if not torch.isfinite(total):
                    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in result.terms.items())
                    raise TrainingError(
                        f"stage '{settings.name}' step {step}: non-finite loss ({terms}); stopped — "
                        f"last good checkpoint: {store.latest() or 'none yet'}"
                    )
                scaler.scale(total / settings.grad_accum).backward()
                values = {f"loss/{k}": float(v.detach()) for k, v in result.terms.items()} | result.logged
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
            logged = {key: sums[key] / counts[key] for key in sums}
            if settings.grad_clip is not None:
                scaler.unscale_(task.optimizer)
                logged["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip))
            scaler.step(task.optimizer)
            scaler.update()
            if task.scheduler is not None:
                task.scheduler.step()
            if ema is not None:
                ema.update(model)
            logged.update(task.after_update(step))
            step += 1
            logged["loss/total"] = sum(v for k, v in logged.items() if k.startswith("loss/"))
            logged["lr"] = task.optimizer.param_groups[0]["lr"]
            logged["time/step_s"] = time.perf_counter() - step_started
            logged["time/data_wait_s"] = data_wait
            if settings.eval_every is not None and (step % settings.eval_every == 0 or step == settings.steps):
                evaluated = _evaluate(task, ema.shadow if ema is not None else model, step) if ctx.is_main else None
                if evaluated is not None:
                    logged.update(evaluated.scalars)
                    if live is not None:
                        live.images(evaluated.images)
            last = logged
            bar.update(1)
            bar.set_postfix(loss=f"{logged['loss/total']:.4f}")
            if live is not None:
                live.log(step, logged)
            if step % settings.checkpoint_every == 0 or step == settings.steps:
                _save_checkpoint(store, step, modules, states, consumed, run_id, ctx)
    _check_replicas(model, ctx)
    if ctx.world_size > 1:
        print_fn(f"replicas identical across {ctx.world_size} ranks (weights and codebook)")
    result = LoopResult(None, step, last, time.perf_counter() - started)
    if ctx.is_main:
        result.output = task.write_output(ema.shadow if ema is not None else model)
        if live is not None:
            live.close()
        print_fn(summary_line(settings, task, result))
    return result


def summary_line(settings: LoopSettings, task: TrainingTask, result: LoopResult) -> str:
    """One line at the end of a stage: final losses and the task's summary keys, wall time, where things are."""
    keys = [key for key in result.last if key.startswith("loss/")] + list(task.summary_keys)
    values = ", ".join(f"{key} {result.last[key]:.4g}" for key in keys if key in result.last)
    minutes, seconds = divmod(result.wall_s, 60)
    return (
        f"stage '{settings.name}' done at step {result.step} in {int(minutes)}m{seconds:04.1f}s"
        + (f": {values}" if values else "")
        + f"; plots: {settings.live_dir / 'plots'}; output: {result.output}"
    )


def _evaluate(task: TrainingTask, model: nn.Module, step: int) -> Any:
    """The task's evaluation in eval mode, without touching the training RNG streams (resume stays exact)."""
    saved, was_training = rng_state(), model.training
    model.eval()
    try:
        with torch.no_grad():
            return task.evaluate(model, step)
    finally:
        model.train(was_training)
        set_rng_state(saved)


def _save_checkpoint(
    store: CheckpointStore,
    step: int,
    modules: dict[str, nn.Module],
    states: dict[str, Any],
    consumed: int,
    fingerprint: str,
    ctx: DistContext,
) -> None:
    """Rank 0 writes; every rank's RNG streams are gathered so each resumes its own."""
    streams = [rng_state()]
    if ctx.world_size > 1:
        streams = [None] * ctx.world_size
        dist.all_gather_object(streams, rng_state())
    if ctx.is_main:
        saved = {name: value.state_dict() for name, value in states.items()}
        store.save(step, modules, {**saved, "rng": streams, "batches_consumed": consumed, "fingerprint": fingerprint})
    if ctx.world_size > 1:
        dist.barrier()


def _check_replicas(model: nn.Module, ctx: DistContext) -> None:
    """Raise if the ranks' weights or buffers differ; a no-op in one process."""
    if ctx.world_size == 1:
        return
    mine = torch.stack([t.detach().double().sum() for t in model.state_dict().values()]).to(ctx.device)
    every = [torch.empty_like(mine) for _ in range(ctx.world_size)]
    dist.all_gather(every, mine)
    differing = [rank for rank, theirs in enumerate(every) if not torch.equal(theirs, every[0])]
    if differing:
        raise TrainingError(f"model replicas diverged: ranks {differing} differ from rank 0")

