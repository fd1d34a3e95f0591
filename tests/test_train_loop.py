"""The generic loop trains something that is not a tokenizer: linear regression on a synthetic stream."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import LoopSettings, run_training
from omnipipe.train.task import Evaluation, StepLoss, TrainingTask

TRUE_WEIGHT = torch.tensor([[1.5, -2.0, 0.5, 3.0]])
TRUE_BIAS = 0.25


def regression_batch(number: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``number``-th batch of the stream: x (8, 4), y (8, 1) = x·w + b + small noise, from its own seed."""
    generator = torch.Generator().manual_seed(1000 + number)
    x = torch.randn(8, 4, generator=generator)
    return x, x @ TRUE_WEIGHT.T + TRUE_BIAS + 0.01 * torch.randn(8, 1, generator=generator)


class LinearRegression(TrainingTask):
    """A toy task; its loss draws from the global RNG (input noise), so exact resume needs the RNG restored."""

    def __init__(self, ctx: DistContext, output: Path) -> None:
        self.model = nn.Linear(4, 1).to(ctx.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.5)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=30, gamma=0.5)
        self.output = output

    def settings(self) -> dict[str, Any]:
        return {"task": "linear-regression", "lr": 0.1}

    def batches(self, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        number = start
        while True:
            yield regression_batch(number)
            number += 1

    def loss(self, net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> StepLoss:
        x, y = batch
        jittered = x + 0.001 * torch.randn_like(x)
        error = net(jittered) - y
        return StepLoss({"mse": error.square().mean()}, {"mean_abs_error": float(error.detach().abs().mean())})

    def evaluate(self, model: nn.Module, step: int) -> Evaluation:
        x, y = regression_batch(-1)
        torch.randn(100)  # evaluation may draw random numbers: the loop keeps them out of the training streams
        return Evaluation({"val/mse": float((model(x) - y).square().mean())})

    def write_output(self, model: nn.Module) -> Path:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(self.output))
        return self.output


def _settings(root: Path, eval_every: int | None = None) -> LoopSettings:
    return LoopSettings(
        name="regression", steps=60, checkpoints=root / "ckpt", live_dir=root / "live", seed=3, grad_accum=2,
        grad_clip=10.0, ema_decay=0.5, checkpoint_every=30, keep_last=5, eval_every=eval_every, device="cpu",
    )  # fmt: skip


def _train(root: Path, *, resume: bool = False, eval_every: int | None = None) -> dict[str, torch.Tensor]:
    output = root / "model.safetensors"
    run_training(_settings(root, eval_every), lambda ctx: LinearRegression(ctx, output), resume=resume)
    return load_file(str(output))


def test_the_loop_fits_a_linear_regression(tmp_path: Path) -> None:
    fitted = _train(tmp_path)  # the EMA model (decay 0.5) is the output
    assert torch.allclose(fitted["weight"], TRUE_WEIGHT, atol=0.02), fitted["weight"]
    assert abs(float(fitted["bias"]) - TRUE_BIAS) < 0.02


def test_half_then_resume_then_half_is_bit_exact(tmp_path: Path) -> None:
    straight = _train(tmp_path / "straight")
    root = tmp_path / "resumed"
    _train(root)
    store = CheckpointStore(root / "ckpt", keep_last=5)
    assert store.steps() == [30, 60]
    shutil.rmtree(store.path(60))  # as if the run had stopped right after step 30
    (root / "model.safetensors").unlink()
    resumed = _train(root, resume=True)
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_evaluation_leaves_training_unchanged_and_logs_a_series(tmp_path: Path) -> None:
    without = _train(tmp_path / "without")
    with_eval = _train(tmp_path / "with", eval_every=15)
    for name in without:
        assert torch.equal(without[name], with_eval[name]), name
    rows = (tmp_path / "with/live/plots/metrics/val/mse.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == ["15", "30", "45", "60"]
    final = json.loads((tmp_path / "with/live/metrics.json").read_text())
    assert final["step"] == 60 and final["val"]["mse"] < 0.01
