"""The training loop every trainable component shares (tokenizers, generators): see ``TrainingTask``.

Per run: seed, join the process group (torchrun), build the task, resume its newest checkpoint when
the fingerprint matches, then per step: ``grad_accum`` micro-batches (DDP's ``no_sync`` on all but
the last) under autocast, a non-finite-loss guard, gradient clipping, the optimizer and schedule
step, the weight EMA, the task's ``after_update``, the live log, periodic evaluation and checkpoints
(rank 0 writes; every rank's RNG streams are saved). At the end the ranks' replicas are compared and
rank 0 writes the output (the EMA model when there is one). With ``fsdp`` the model is sharded with
FSDP2 instead of replicated (``omnipipe.train.sharding``) and checkpoints are sharded
(``omnipipe.train.sharded_checkpoint``); they resume on any number of ranks.
"""
from __future__ import annotations

import errno
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from omnipipe.errors import OmnipipeError
from omnipipe.spec.train import LoopSpec
from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.compiled import compiled_for_training
from omnipipe.train.distributed import DistContext, init_distributed
from omnipipe.train.ema import WeightEMA
from omnipipe.train.fingerprint import run_fingerprint
from omnipipe.train.live import LiveLog
from omnipipe.train.precision import Precision, autocast, grad_scaler, resolve_precision
from omnipipe.train.record import write_record
from omnipipe.train.seed import rng_state, seed_everything, set_rng_state
from omnipipe.train.sharded_checkpoint import load_sharded, save_sharded
from omnipipe.train.sharding import gathered, module_with, shard, skeleton_of
from omnipipe.train.task import TrainingTask


_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class TrainingError(OmnipipeError):
    """Training cannot go on (e.g. a non-finite loss)."""


@dataclass(frozen=True)
class LoopSettings:
    """How a stage runs; nothing here is specific to a kind of model.

    ``eval_every``: call the task's ``evaluate`` every this many steps and at the last one (None: never).
    ``precision``: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``fp32``, ``bf16`` or ``fp16``
    (autocast with loss scaling). ``device``: e.g. ``cpu``, ``cuda`` (None: CUDA when available).
    ``record_dir``: where the stage's record for DVC goes at the end (``omnipipe.train.record``; None: none).
    ``fsdp``: shard the model, its gradients and optimizer state over the ranks with FSDP2 instead of DDP
    (``task.fsdp_units()``), with sharded checkpoints (Distributed Checkpoint) in one process too.
    ``compile``: run the training forward and backward through ``torch.compile`` (``omnipipe.train.compiled``);
    a speed choice, so checkpoints resume across it.
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
    record_dir: Path | None = None
    fsdp: bool = False
    compile: bool = False

    @classmethod
    def of(
        cls, run: LoopSpec, name: str, *, checkpoints: Path, live_dir: Path, record_dir: Path | None, seed: int,
        precision: Precision = "auto", device: str | None = None, compile: bool = False,
    ) -> LoopSettings:  # fmt: skip
        """The settings of a stage whose spec section is ``run`` (a tokenizer, VTok or generator stage)."""
        return cls(
            name=name, steps=run.steps, checkpoints=checkpoints, live_dir=live_dir, seed=seed, grad_accum=run.grad_accum,
            grad_clip=run.grad_clip, ema_decay=run.ema_decay, checkpoint_every=run.checkpoint_every,
            keep_last=run.keep_last, eval_every=run.eval_every, precision=precision, device=device, record_dir=record_dir,
            compile=compile,
        )  # fmt: skip


@dataclass
class LoopResult:
    """Where the output went, the step reached, the last logged values and the wall time of this run."""

    output: Path | None
    step: int
    last: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


def run_training(
    settings: LoopSettings,
    build: Callable[[DistContext], TrainingTask],
    *,
    resume: bool = False,
    restart: bool = False,
) -> LoopResult:
    """Train the task ``build(ctx)`` returns (called after seeding) to ``settings.steps``; see the module doc.

    ``resume``: continue from the newest intact checkpoint when it was written with the same settings, code
    and input contents (``task.inputs()``), else start over;
    ``restart``: delete the stage's checkpoints and start over. With neither, existing checkpoints stop
    the run with a message (nothing is deleted unasked).
    """
    store = CheckpointStore(settings.checkpoints, settings.keep_last)
    try:
        with _sigterm_as_interrupt():
            return _run(settings, build, store, resume=resume, restart=restart)
    except KeyboardInterrupt:
        latest = store.latest()
        kept = f"{latest} is kept" if latest is not None else "no checkpoint was written yet"
        print(f"stage '{settings.name}' interrupted; {kept}: run again with --resume to continue", file=sys.stderr)
        raise
    except OSError as error:
        if error.errno not in _STORAGE_ERRORS:
            raise
        where = error.filename or settings.checkpoints
        raise TrainingError(f"{where}: {error.strerror or error}; {store.storage_advice()}") from None


def _run(
    settings: LoopSettings,
    build: Callable[[DistContext], TrainingTask],
    store: CheckpointStore,
    *,
    resume: bool,
    restart: bool,
) -> LoopResult:
    started = time.perf_counter()
    ctx = init_distributed(settings.device)
    seed_everything(settings.seed)
    task = build(ctx)
    model = task.model
    if ctx.world_size > 1:
        task.join(ctx)
    precision = resolve_precision(settings.precision, ctx.device)
    if settings.fsdp and precision == "fp16":
        raise TrainingError(f"stage '{settings.name}': fsdp trains in fp32 or bf16, not fp16 (its loss scaling is not supported)")
    if settings.fsdp and settings.compile:
        raise TrainingError(f"stage '{settings.name}': --compile is not supported with fsdp yet; leave one of them out")
    sharded = settings.fsdp and ctx.world_size > 1
    skeleton = skeleton_of(model) if sharded else None
    if sharded:
        shard(model, task.fsdp_units(), task.optimizer)
    scaler = grad_scaler(precision, ctx.device)
    ema = None
    if settings.ema_decay is not None:
        shadow = module_with(skeleton, {k: v.detach().clone() for k, v in model.state_dict().items()}) if sharded else None
        ema = WeightEMA(model, settings.ema_decay, shadow)
    modules: dict[str, nn.Module] = {"model": model, **task.extra_modules()}
    if ema is not None:
        modules["ema"] = ema.shadow
    states: dict[str, Any] = {"optimizer": task.optimizer, "scheduler": task.scheduler, "scaler": scaler}
    states = {name: value for name, value in {**states, **task.extra_states()}.items() if value is not None}
    run_id = run_fingerprint({"task": task.settings(), "precision": precision, **({"fsdp": True} if settings.fsdp else {})}, task.inputs())
    print_fn = tqdm.write if ctx.is_main else (lambda _: None)

    step, consumed = 0, 0
    latest = _resume_point(settings.name, store, run_id, resume=resume, restart=restart, say=print_fn)
    if latest is None:
        if ctx.is_main:
            store.clear()
    elif settings.fsdp:
        saved = store.load(latest, _replicated(modules), verified=True)  # _resume_point verified it
        tensors = _sharded_tensors(modules, task.optimizer)
        load_sharded(latest, tensors)
        set_model_state_dict(model, tensors["model"])
        set_optimizer_state_dict(model, task.optimizer, tensors["optimizer"])
        if ema is not None:
            ema.shadow.load_state_dict(tensors["ema"])
        for name, value in states.items():
            if name != "optimizer":
                value.load_state_dict(saved[name])
    else:
        saved = store.load(latest, modules, verified=True)  # _resume_point verified it
        for name, value in states.items():
            value.load_state_dict(saved[name])
    if latest is not None:
        set_rng_state(saved["rng"][ctx.rank] if ctx.rank < len(saved["rng"]) else saved["rng"][0])
        step, consumed = saved["step"], saved["batches_consumed"]
        print_fn(f"resuming stage '{settings.name}' at step {step} from {latest}")

    # Buffers are not broadcast: tasks keep them equal across ranks themselves (e.g. a synced codebook).
    net: nn.Module = (
        DistributedDataParallel(model, broadcast_buffers=False, find_unused_parameters=task.find_unused_parameters)
        if ctx.world_size > 1 and not sharded
        else model
    )
    if settings.compile:
        net = compiled_for_training(net, ctx.device)
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
                if sharded:
                    model.set_requires_gradient_sync(sync)  # FSDP2's no_sync
                with (nullcontext() if sync or sharded else net.no_sync()), autocast(precision, ctx.device):
                    step_loss = task.loss(net, batch, step)
                    total = sum(step_loss.terms.values())
                if not torch.isfinite(total):
                    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in step_loss.terms.items())
                    raise TrainingError(
                        f"stage '{settings.name}' step {step}: non-finite loss ({terms}); stopped — "
                        f"last good checkpoint: {store.latest() or 'none yet'}"
                    )
                scaler.scale(total / settings.grad_accum).backward()
                values = {f"loss/{k}": float(v.detach()) for k, v in step_loss.terms.items()} | step_loss.logged
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
            logged = {key: sums[key] / counts[key] for key in sums}
            if settings.grad_clip is not None:
                scaler.unscale_(task.optimizer)
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                logged["grad_norm"] = float(norm.full_tensor() if isinstance(norm, DTensor) else norm)
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
                whole = _whole(ema.shadow if ema is not None else model, skeleton, ctx)
                evaluated = _evaluate(task, whole, step) if ctx.is_main else None
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
                _save_checkpoint(store, step, modules, states, consumed, run_id, ctx, settings.fsdp)
    if sharded:
        print_fn(f"model sharded over {ctx.world_size} ranks (FSDP2)")
    else:
        _check_replicas(model, ctx)
        if ctx.world_size > 1:
            print_fn(f"replicas identical across {ctx.world_size} ranks (weights and codebook)")
    result = LoopResult(None, step, last, time.perf_counter() - started)
    final = _whole(ema.shadow if ema is not None else model, skeleton, ctx)
    if ctx.is_main:
        result.output = task.write_output(final)
        if live is not None:
            live.close()
        if settings.record_dir is not None:
            write_record(settings.record_dir, settings.live_dir, step, task.summary_keys)
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
        + f"; plots: {(settings.record_dir or settings.live_dir) / 'plots'}; output: {result.output}"
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM (e.g. a scheduler stopping the job) interrupts like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _resume_point(
    name: str, store: CheckpointStore, run_id: str, *, resume: bool, restart: bool, say: Callable[[str], None]
) -> Path | None:
    """The checkpoint to continue from, verified (None: start over, clearing the old ones) — see ``run_training``."""
    if not resume:
        newest = store.latest()
        if newest is not None and not restart:
            raise TrainingError(
                f"{store.root}: stage '{name}' already has checkpoints (newest: {newest.name}); "
                "run with --resume to continue them or --restart to delete them and start over"
            )
        return None
    latest, damaged = store.newest_intact()
    for problem in damaged:
        say(f"{problem}; skipped")
    if latest is not None and damaged:
        say(f"falling back to the newest intact checkpoint {latest}")
    if latest is not None and store.state(latest, verified=True)["fingerprint"] != run_id:
        say(f"{latest}: written with other settings, code or inputs of stage '{name}'; starting over")
        return None
    return latest


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


def _whole(module: nn.Module, skeleton: nn.Module | None, ctx: DistContext) -> nn.Module | None:
    """``module`` itself, or — sharded (``skeleton`` given) — a whole copy on rank 0 (None elsewhere); every rank calls it."""
    if skeleton is None:
        return module
    tensors = gathered(module, keep=ctx.is_main)
    return module_with(skeleton, tensors) if tensors is not None else None


def _replicated(modules: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """The modules a sharded checkpoint keeps whole (the task's extra modules): all but the model and its EMA."""
    return {name: module for name, module in modules.items() if name not in ("model", "ema")}


def _sharded_tensors(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What Distributed Checkpoint saves and loads: the model's and its optimizer's state by parameter name, and the EMA's."""
    tensors = {"model": get_model_state_dict(modules["model"]), "optimizer": get_optimizer_state_dict(modules["model"], optimizer)}
    if "ema" in modules:
        tensors["ema"] = modules["ema"].state_dict()
    return tensors


def _save_checkpoint(
    store: CheckpointStore,
    step: int,
    modules: dict[str, nn.Module],
    states: dict[str, Any],
    consumed: int,
    fingerprint: str,
    ctx: DistContext,
    fsdp: bool = False,
) -> None:
    """Rank 0 writes (with ``fsdp`` every rank writes its shards); every rank's RNG streams are gathered so each
    resumes its own."""
    streams = [rng_state()]
    if ctx.world_size > 1:
        streams = [None] * ctx.world_size
        dist.all_gather_object(streams, rng_state())
    if fsdp:
        kept = {name: value.state_dict() for name, value in states.items() if name != "optimizer"}
        trainer = {**kept, "rng": streams, "batches_consumed": consumed, "fingerprint": fingerprint}
        save_sharded(store, step, _sharded_tensors(modules, states["optimizer"]), _replicated(modules), trainer, ctx)
        return
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

