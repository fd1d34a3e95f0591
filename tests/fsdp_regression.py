"""A small regression task for the FSDP2 tests, run in-process or under torchrun (``python fsdp_regression.py ROOT
STEPS [--resume]``): each rank takes its share of every batch, so any number of ranks trains the same model."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.task import StepLoss, TrainingTask

TRUE_WEIGHT = torch.tensor([[1.5, -2.0, 0.5, 3.0]])


class ShardedRegression(TrainingTask):
    """A two-layer network fitted to y = tanh(x·w) on batches of 8 rows; rank r of N takes rows r, r + N, …"""

    def __init__(self, ctx: DistContext, output: Path) -> None:
        self.model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)).to(ctx.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=0.02, weight_decay=0.01)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=10, gamma=0.5)
        self.rank, self.world, self.output = ctx.rank, ctx.world_size, output

    def settings(self) -> dict[str, Any]:
        return {"task": "sharded-regression"}

    def batches(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        number = start
        while True:
            x = torch.randn(8, 4, generator=torch.Generator().manual_seed(number))
            yield x[self.rank :: self.world], torch.tanh(x @ TRUE_WEIGHT.T)[self.rank :: self.world]
            number += 1

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> StepLoss:
        x, y = batch
        return StepLoss({"mse": (net(x) - y).square().mean()})

    def fsdp_units(self) -> list[nn.Module]:
        return [self.model[0]]

    def write_output(self, model: nn.Module) -> Path:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(self.output))
        return self.output


def train(root: Path, steps: int, *, fsdp: bool = True, resume: bool = False) -> Path:
    """Train to ``steps`` (checkpoints every 10, EMA, clipping, 2 micro-batches a step); the output file."""
    settings = LoopSettings(
        name="sharded", steps=steps, checkpoints=root / "ckpt", live_dir=root / "live", seed=5, grad_accum=2,
        grad_clip=1.0, ema_decay=0.8, checkpoint_every=10, keep_last=5, device="cpu", fsdp=fsdp,
    )  # fmt: skip
    output = root / "model.safetensors"
    run_training(settings, lambda ctx: ShardedRegression(ctx, output), resume=resume)
    return output


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]), resume="--resume" in sys.argv)
