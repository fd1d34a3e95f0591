"""``omnipipe train --stage NAME``: one progressive training stage, resumable, data-parallel."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from contextlib import nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from omnipipe.data.loader import Batch, make_loader
from omnipipe.errors import OmnipipeError
from omnipipe.losses.gan import discriminator_for, discriminator_step
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.train import OptimizerSpec, StageSpec
from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.distributed import DistContext, all_reduce_sum, broadcast_from_main, init_distributed
from omnipipe.train.ema import WeightEMA
from omnipipe.train.initialise import initialise_from, stage_is_video_start
from omnipipe.train.live import LiveLog
from omnipipe.train.objective import Objective
from omnipipe.train.paths import StagePaths
from omnipipe.train.schedule import lr_factor
from omnipipe.train.seed import rng_state, seed_everything, set_rng_state


class TrainingError(OmnipipeError):
    """Training cannot go on (e.g. a non-finite loss)."""


def stage_model_spec(spec: Experiment, stage: StageSpec) -> ModelSpec:
    """The model of a stage: the spec's, with the stage's bottleneck when it swaps it (and every later stage)."""
    quantizer = spec.model.quantizer
    for earlier in spec.train.stages.values():
        if earlier.quantizer is not None:
            quantizer = earlier.quantizer
        if earlier is stage:
            break
    return spec.model.model_copy(update={"quantizer": quantizer})


def code_version() -> str:
    """A hash of omnipipe's own source files: a checkpoint is only continued by the code that wrote it."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(spec: Experiment, stage_name: str) -> str:
    """A hash of everything a stage's result depends on (spec sections and code); resuming requires it to match."""
    stage = spec.train.stages[stage_name]
    relevant = {
        "code": code_version(),
        "seed": spec.seed,
        "data": spec.data.model_dump(mode="json"),
        "model": stage_model_spec(spec, stage).model_dump(mode="json"),
        "losses": {k: v.model_dump(mode="json") for k, v in spec.train.losses.items()},
        "quantizer_loss_weights": spec.train.quantizer_loss_weights,
        "discriminators": {k: v.model_dump(mode="json") for k, v in spec.train.discriminators.items()},
        "stage": stage.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def make_optimizer(spec: OptimizerSpec, parameters: Iterator[torch.nn.Parameter]) -> torch.optim.Optimizer:
    kind = torch.optim.AdamW if spec.name == "adamw" else torch.optim.Adam
    return kind(list(parameters), lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)


def batches(spec: Experiment, stage: StageSpec, ctx: DistContext, consumed: int, num_workers: int) -> Iterator[Batch]:
    """The stage's training batches of this rank, from the ``consumed``-th on (one planned stream per stage)."""
    total = stage.steps * stage.grad_accum
    yield from make_loader(
        spec, stage, "train", ctx.rank, ctx.world_size, num_workers=num_workers,
        num_batches=total - consumed, start_batch=consumed,
    )  # fmt: skip


def _autocast(device: torch.device) -> Any:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _sync_codebooks(model: Tokenizer, ctx: DistContext) -> None:
    """Sum the VQ's EMA statistics over ranks and share rank 0's dead-code restarts: codebooks stay equal."""
    if ctx.world_size > 1 and hasattr(model.quantizer, "sync_fn"):
        model.quantizer.sync_fn = all_reduce_sum
        model.quantizer.broadcast_fn = broadcast_from_main


def _check_replicas(model: torch.nn.Module, ctx: DistContext) -> None:
    """Raise if the ranks' weights or buffers (the VQ codebook included) differ; a no-op in one process."""
    if ctx.world_size == 1:
        return
    mine = torch.stack([t.detach().double().sum() for t in model.state_dict().values()]).to(ctx.device)
    every = [torch.empty_like(mine) for _ in range(ctx.world_size)]
    dist.all_gather(every, mine)
    differing = [rank for rank, theirs in enumerate(every) if not torch.equal(theirs, every[0])]
    if differing:
        raise TrainingError(f"model replicas diverged: ranks {differing} differ from rank 0")


def _last_layer(model: Tokenizer, pixels: torch.Tensor) -> torch.Tensor | None:
    """The weight that produces these pixels, for the GAN's adaptive weight (None if the patchifier has none)."""
    output_weight = getattr(model.patchifier, "output_weight", None)
    return output_weight(pixels.shape[2]) if output_weight is not None else None


def _save_checkpoint(
    store: CheckpointStore,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, Any],
    consumed: int,
    fingerprint_: str,
    ctx: DistContext,
) -> None:
    """Rank 0 writes; every rank's RNG streams are gathered so each resumes its own."""
    states = [rng_state()]
    if ctx.world_size > 1:
        states = [None] * ctx.world_size
        dist.all_gather_object(states, rng_state())
    if ctx.is_main:
        state = {name: opt.state_dict() for name, opt in optimizers.items() if opt is not None}
        store.save(step, modules, {**state, "rng": states, "batches_consumed": consumed, "fingerprint": fingerprint_})
    if ctx.world_size > 1:
        dist.barrier()


def train_stage(
    spec: Experiment, stage_name: str, registry: Registry, *, resume: bool = False, num_workers: int = 0
) -> StagePaths:
    """Run one stage to its last step; rank 0 writes checkpoints, live metrics and the final model."""
    stage = spec.train.stages[stage_name]
    paths = StagePaths.of(spec, stage_name)
    ctx = init_distributed()
    seed_everything(spec.seed)

    model = Tokenizer.from_spec(stage_model_spec(spec, stage), registry)
    if stage.init_from is not None:
        previous = spec.train.stages[stage.init_from]
        initialise_from(
            model,
            StagePaths.of(spec, stage.init_from).model_file,
            inflate_temporal=stage_is_video_start(previous.data, stage.data),
            keep_quantizer=stage_model_spec(spec, previous).quantizer == model.spec.quantizer,
        )
    model.to(ctx.device)
    _sync_codebooks(model, ctx)

    built = {name: registry.build("loss", entry) for name, entry in spec.train.losses.items()}
    adversarial = {name: module for name, module in built.items() if hasattr(module, "generator_loss")}
    objective = Objective(
        {name: (spec.train.losses[name], module) for name, module in built.items() if name not in adversarial},
        dict(spec.train.quantizer_loss_weights),
    ).to(ctx.device)
    discriminators = torch.nn.ModuleDict(
        {key: registry.build("discriminator", entry) for key, entry in spec.train.discriminators.items()}
        if adversarial
        else {}
    ).to(ctx.device)
    if adversarial and not discriminators:
        raise TrainingError(f"loss '{next(iter(adversarial))}' needs train.discriminators (image and/or video)")

    optimizer = make_optimizer(stage.optimizer, model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(stage.schedule, stage.steps))
    d_optimizer = make_optimizer(stage.optimizer, discriminators.parameters()) if adversarial else None
    ema = WeightEMA(model, stage.ema_decay) if stage.ema_decay is not None else None

    store = CheckpointStore(paths.checkpoints, stage.keep_last)
    run_id = fingerprint(spec, stage_name)
    modules: dict[str, torch.nn.Module] = {"model": model, "discriminators": discriminators}
    if ema is not None:
        modules["ema"] = ema.shadow
    step, consumed = 0, 0
    print_fn = tqdm.write if ctx.is_main else (lambda _: None)
    latest = store.latest() if resume else None
    if latest is not None and store.state(latest)["fingerprint"] != run_id:
        print_fn(f"{latest}: written by another configuration or code version of stage '{stage_name}'; starting over")
        latest = None
    if latest is None:
        if ctx.is_main:
            store.clear()
    else:
        state = store.load(latest, modules)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if d_optimizer is not None:
            d_optimizer.load_state_dict(state["d_optimizer"])
        set_rng_state(state["rng"][ctx.rank] if ctx.rank < len(state["rng"]) else state["rng"][0])
        step, consumed = state["step"], state["batches_consumed"]
        print_fn(f"resuming stage '{stage_name}' at step {step} from {latest}")

    # Buffers are not broadcast: the codebook stays equal on every rank through its synced updates.
    # Image batches leave the temporal patch weights unused, hence find_unused_parameters.
    net: torch.nn.Module = (
        DistributedDataParallel(model, broadcast_buffers=False, find_unused_parameters=True)
        if ctx.world_size > 1
        else model
    )
    live = LiveLog(paths.live_dir, resume=latest is not None) if ctx.is_main else None
    stream = batches(spec, stage, ctx, consumed, num_workers)
    with tqdm(total=stage.steps, initial=step, desc=stage_name, disable=not ctx.is_main, dynamic_ncols=True) as bar:
        model.train()
        while step < stage.steps:
            started = time.perf_counter()
            data_wait = 0.0
            optimizer.zero_grad(set_to_none=True)
            logged: dict[str, float] = {}
            for micro in range(stage.grad_accum):
                fetched = time.perf_counter()
                batch = next(stream)
                consumed += 1
                data_wait += time.perf_counter() - fetched
                target = batch.pixels.to(ctx.device, non_blocking=True)
                sync = micro == stage.grad_accum - 1 or ctx.world_size == 1
                with (nullcontext() if sync else net.no_sync()), _autocast(ctx.device):
                    out = net(target)
                    recon_loss, parts = objective(out.reconstruction, target, out.quantizer, step)
                    for name, gan in adversarial.items():
                        entry = spec.train.losses[name]
                        if step >= entry.start_step:
                            critic = discriminator_for(discriminators, target)
                            last = _last_layer(model, target)
                            g_loss, g_stats = gan.generator_loss(out.reconstruction, target, critic, recon_loss, last)
                            parts[name] = entry.weight * g_loss
                            logged.update({f"{name}/{k}": float(v) for k, v in g_stats.items()})
                    total = sum(parts.values())
                if not torch.isfinite(total):
                    last_good = store.latest()
                    raise TrainingError(
                        f"stage '{stage_name}' step {step}: non-finite loss "
                        f"({', '.join(f'{k}={float(v.detach()):.4g}' for k, v in parts.items())}); stopped — "
                        f"last good checkpoint: {last_good or 'none yet'}"
                    )
                (total / stage.grad_accum).backward()
                for name, value in parts.items():
                    logged[f"loss/{name}"] = logged.get(f"loss/{name}", 0.0) + float(value.detach()) / stage.grad_accum
                for name, value in out.quantizer.stats.items():
                    logged[f"codebook/{name}"] = float(value)
            if stage.grad_clip is not None:
                logged["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), stage.grad_clip))
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            if d_optimizer is not None:
                for name, gan in adversarial.items():
                    if step >= spec.train.losses[name].start_step:
                        critic = discriminator_for(discriminators, target)
                        d_stats = discriminator_step(critic, d_optimizer, gan, out.reconstruction, target)
                        logged.update({f"{name}/{k}": float(v) for k, v in d_stats.items()})
            step += 1
            logged["loss/total"] = sum(v for k, v in logged.items() if k.startswith("loss/"))
            logged["lr"] = scheduler.get_last_lr()[0]
            logged["time/step_s"] = time.perf_counter() - started
            logged["time/data_wait_s"] = data_wait
            bar.update(1)
            bar.set_postfix(loss=f"{logged['loss/total']:.4f}")
            if live is not None:
                live.log(step, logged)
            if step % stage.checkpoint_every == 0 or step == stage.steps:
                optimizers = {"optimizer": optimizer, "scheduler": scheduler, "d_optimizer": d_optimizer}
                _save_checkpoint(store, step, modules, optimizers, consumed, run_id, ctx)
    _check_replicas(model, ctx)
    if ctx.world_size > 1:
        print_fn(f"replicas identical across {ctx.world_size} ranks (weights and codebook)")
    if ctx.is_main:
        final = ema.shadow if ema is not None else model
        paths.out_dir.mkdir(parents=True, exist_ok=True)
        final.save(paths.model_file)
        if live is not None:
            live.close()
    return paths
