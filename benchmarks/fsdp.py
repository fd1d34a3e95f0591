"""FSDP2 vs DDP in the generic training loop: step time and per-rank memory, on CPU with gloo.

    python benchmarks/fsdp.py [--ranks 2] [--width 512] [--blocks 8] [--steps 12] [--out F]

Launches ``--ranks`` processes with torchrun twice, once per mode, each training the same MLP stack
(``--blocks`` residual blocks of width → 4·width → width, AdamW) through ``omnipipe.train.loop.run_training``
on 64 tokens per rank and step. Per rank: the median step time after two warm-up steps; the bytes of
parameters, gradients and optimizer state this rank holds (its shards under FSDP2, everything under
DDP); and the peak resident memory of the steps (the rise of the high-water mark, reset after the
warm-up steps, above what was resident then). Both modes run in one invocation, so the ratios compare
like with like.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from measure import PeakMemory
from torch import nn
from torch.distributed.tensor import DTensor

from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.task import StepLoss, TrainingTask

WARMUP = 2
TOKENS = 64


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm, self.up, self.down = nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(nn.functional.gelu(self.up(self.norm(x))))


class StackTask(TrainingTask):
    """Regress random targets with a stack of blocks; records step times and memory in ``after_update``."""

    def __init__(self, ctx: DistContext, width: int, blocks: int, steps: int, out: Path) -> None:
        self.model = nn.Sequential(*(Block(width) for _ in range(blocks)))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.ctx, self.width, self.steps, self.out = ctx, width, steps, out
        self.stamps: list[float] = []
        self.memory = PeakMemory(torch.device("cpu"))
        self.held_mib = 0.0

    def settings(self) -> dict[str, Any]:
        return {"task": "fsdp-benchmark", "width": self.width}

    def batches(self, start: int) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(start * 100 + self.ctx.rank)
        while True:
            yield torch.randn(TOKENS, self.width, generator=generator)

    def loss(self, net: nn.Module, batch: torch.Tensor, step: int) -> StepLoss:
        return StepLoss({"mse": (net(batch) - batch.flip(1)).square().mean()})

    def fsdp_units(self) -> list[nn.Module]:
        return list(self.model)

    def after_update(self, step: int) -> dict[str, float]:
        self.stamps.append(time.perf_counter())
        if step == WARMUP - 1:
            self.memory.__enter__()
        if step == self.steps - 1:  # before the final checkpoint
            self.memory.__exit__()
            self.held_mib = self.held_bytes() / 2**20
        return {}

    def held_bytes(self) -> int:
        """Parameters, gradients and optimizer state this rank holds (local shards of DTensors)."""
        local = [t.to_local() if isinstance(t, DTensor) else t for t in self._tensors()]
        return sum(t.numel() * t.element_size() for t in local)

    def _tensors(self) -> Iterator[torch.Tensor]:
        for p in self.model.parameters():
            yield p
            if p.grad is not None:
                yield p.grad
        for state in self.optimizer.state.values():
            yield from (v for v in state.values() if isinstance(v, torch.Tensor) and v.dim() > 0)

    def write_output(self, model: nn.Module) -> Path:
        return self.out


def worker(args: argparse.Namespace) -> None:
    """One rank of one mode: train, then write this rank's measurements."""
    holder: dict[str, StackTask] = {}

    def build(ctx: DistContext) -> StackTask:
        holder["task"] = StackTask(ctx, args.width, args.blocks, args.steps, args.scratch)
        return holder["task"]

    settings = LoopSettings(
        name=args.mode, steps=args.steps, checkpoints=args.scratch / f"{args.mode}-ckpt", live_dir=args.scratch / f"{args.mode}-live",
        grad_clip=1.0, checkpoint_every=10**9, keep_last=1, device="cpu", fsdp=args.mode == "fsdp",
    )  # fmt: skip
    run_training(settings, build, restart=True)
    task = holder["task"]
    steps = [b - a for a, b in zip(task.stamps[WARMUP - 1 :], task.stamps[WARMUP:])]
    rank = int(os.environ["RANK"])
    row = {"mode": args.mode, "rank": rank, "step_s": statistics.median(steps), "held_mib": task.held_mib,
           "peak_rise_mib": task.memory.mib}  # fmt: skip
    (args.scratch / f"{args.mode}-{rank}.json").write_text(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fsdp.json"))
    parser.add_argument("--worker", choices=("ddp", "fsdp"), dest="mode")
    parser.add_argument("--scratch", type=Path)
    args = parser.parse_args()
    if args.mode is not None:
        worker(args)
        return
    parameters = args.blocks * (8 * args.width**2 + 7 * args.width)
    print(f"{args.blocks} blocks of width {args.width} ({parameters / 1e6:.1f} M parameters), AdamW, fp32, "
          f"{args.ranks} gloo ranks × {TOKENS} tokens, median of {args.steps - WARMUP} steps")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for mode in ("ddp", "fsdp"):
            launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.ranks)]
            command = [*launch, __file__, "--worker", mode, "--scratch", scratch, "--width", str(args.width),
                       "--blocks", str(args.blocks), "--steps", str(args.steps)]  # fmt: skip
            done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{mode} run failed:\n{done.stderr[-3000:]}")
            rows += [json.loads((Path(scratch) / f"{mode}-{rank}.json").read_text()) for rank in range(args.ranks)]
    print(f"{'mode':<5} {'rank':>4} {'step s':>7} {'held MiB':>9} {'peak rise MiB':>14}")
    for row in rows:
        print(f"{row['mode']:<5} {row['rank']:>4} {row['step_s']:>7.3f} {row['held_mib']:>9.1f} {row['peak_rise_mib']:>14.1f}")
    mean = {mode: {key: statistics.mean(r[key] for r in rows if r["mode"] == mode) for key in ("step_s", "held_mib")} for mode in ("ddp", "fsdp")}
    ratios = {"step_time_fsdp_over_ddp": mean["fsdp"]["step_s"] / mean["ddp"]["step_s"],
              "held_memory_fsdp_over_ddp": mean["fsdp"]["held_mib"] / mean["ddp"]["held_mib"]}  # fmt: skip
    print(f"FSDP2/DDP: step time {ratios['step_time_fsdp_over_ddp']:.2f}×, held state per rank {ratios['held_memory_fsdp_over_ddp']:.2f}×")
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "ranks": args.ranks, "width": args.width, "blocks": args.blocks, "parameters": parameters, "rows": rows, "ratios": ratios,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
