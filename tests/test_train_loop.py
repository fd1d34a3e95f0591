"""The generic loop trains something that is not a tokenizer: linear regression on a synthetic stream."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from omnipipe.errors import OmnipipeError
from omnipipe.train.checkpoint import CheckpointError, CheckpointStore
from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import LoopSettings, TrainingError, run_training
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
        record_dir=root / "record",
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
    # The live log holds steps 31..60 twice now; the record keeps one row per step: the same bytes.
    assert len((root / "live/plots/metrics/loss/mse.tsv").read_text().splitlines()) == 1 + 60 + 30
    records = [sorted(p.relative_to(r) for p in r.rglob("*") if p.is_file()) for r in (tmp_path / "straight/record", root / "record")]
    assert records[0] == records[1] and Path("plots/metrics/loss/mse.tsv") in records[0]
    for relative in records[0]:
        assert (tmp_path / "straight/record" / relative).read_bytes() == (root / "record" / relative).read_bytes(), relative
    assert not any(path.parts[2] == "time" for path in records[0] if len(path.parts) > 2)
    metrics = json.loads((root / "record/metrics.json").read_text())
    tail = [float(line.split("\t")[1]) for line in (root / "record/plots/metrics/loss/total.tsv").read_text().splitlines()[-10:]]
    assert metrics == {"step": 60, "train_loss": pytest.approx(sum(tail) / 10)}


def test_evaluation_leaves_training_unchanged_and_logs_a_series(tmp_path: Path) -> None:
    without = _train(tmp_path / "without")
    with_eval = _train(tmp_path / "with", eval_every=15)
    for name in without:
        assert torch.equal(without[name], with_eval[name]), name
    rows = (tmp_path / "with/live/plots/metrics/val/mse.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in rows[1:]] == ["15", "30", "45", "60"]
    final = json.loads((tmp_path / "with/live/metrics.json").read_text())
    assert final["step"] == 60 and final["val"]["mse"] < 0.01


def test_existing_checkpoints_are_kept_unless_told_to_restart(tmp_path: Path) -> None:
    first = _train(tmp_path)
    with pytest.raises(TrainingError, match=r"ckpt: stage 'regression' already has checkpoints \(newest: step-000060\); "
                                            r"run with --resume to continue them or --restart"):
        _train(tmp_path)
    assert CheckpointStore(tmp_path / "ckpt", keep_last=5).steps() == [30, 60]
    output = tmp_path / "model.safetensors"
    run_training(_settings(tmp_path), lambda ctx: LinearRegression(ctx, output), restart=True)
    assert all(torch.equal(first[name], value) for name, value in load_file(str(output)).items())


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = _train(tmp_path)
    model_file = tmp_path / "ckpt/step-000060/model.safetensors"
    data = bytearray(model_file.read_bytes())
    data[-3] ^= 0x40  # one flipped bit inside a weight: same size, still a valid safetensors file
    model_file.write_bytes(bytes(data))
    capsys.readouterr()
    resumed = _train(tmp_path, resume=True)
    out = capsys.readouterr().out
    assert "step-000060: damaged checkpoint (model.safetensors does not match its checksum); skipped" in out
    assert "falling back to the newest intact checkpoint" in out and "resuming stage 'regression' at step 30" in out
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def fill(path: Path) -> None:
    """Write zeros to ``path`` until its file system is full."""
    with open(path, "wb", buffering=0) as filler:
        for chunk in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * chunk)


class FillsTheDisk(LinearRegression):
    """Fills the output disk after step 45, as another process might."""

    def after_update(self, step: int) -> dict[str, float]:
        if step == 45:
            fill(self.output.parent / "filler")
        return {}


@contextlib.contextmanager
def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``mount`` (needs root and mount rights; the test is skipped elsewhere)."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "size=4m") as mount:
        yield mount


def test_a_full_disk_stops_with_one_line_and_the_next_run_resumes(small_disk: Path) -> None:
    straight = _train(small_disk / "straight")
    shutil.rmtree(small_disk / "straight")
    root = small_disk / "run"
    output = root / "model.safetensors"
    root.mkdir()
    with pytest.raises(OmnipipeError) as caught:  # the checkpoint or the live log, whichever writes first
        run_training(_settings(root), lambda ctx: FillsTheDisk(ctx, output))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(root)) and "No space left on device" in message
    assert message.endswith(f"then run again with --resume (it continues from {root / 'ckpt/step-000030'})")
    assert not list(small_disk.rglob(".partial-*")) and not list(small_disk.rglob("*.tmp"))
    (root / "filler").unlink()
    resumed = _train(root, resume=True)
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_a_checkpoint_that_does_not_fit_leaves_nothing_behind(small_disk: Path) -> None:
    store = CheckpointStore(small_disk / "ckpt", keep_last=2)
    fill(small_disk / "filler")
    with pytest.raises(CheckpointError) as caught:
        store.save(1, {"model": nn.Linear(64, 64)}, {})
    message = str(caught.value)
    assert message.startswith(f"{small_disk / 'ckpt'}: cannot write a checkpoint (") and "No space left on device" in message
    assert message.endswith("); free disk space or make the folder writable, then run again with --resume (it continues from the start)")
    assert store.steps() == [] and not list(small_disk.rglob(".partial-*"))


def test_a_read_only_output_folder_stops_with_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "read-only", "size=1m,ro") as mount:
        with pytest.raises(TrainingError) as caught:
            _train(mount)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(mount)) and "Read-only file system" in message
    assert "make the folder writable, then run again with --resume (it continues from the start)" in message


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")  # fp16's skipped first step
def test_precision_options_train_and_a_checkpoint_resumes_only_in_its_own_precision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "model.safetensors"
    fp32 = _train(tmp_path)
    for precision in ("bf16", "fp16"):
        settings = dataclasses.replace(_settings(tmp_path), precision=precision)
        run_training(settings, lambda ctx: LinearRegression(ctx, output), resume=True)
        assert "written with other settings, code or inputs of stage 'regression'; starting over" in capsys.readouterr().out
        low = load_file(str(output))["weight"]
        assert not torch.equal(low, fp32["weight"]) and torch.allclose(low, TRUE_WEIGHT, atol=0.05), (precision, low)


def test_asking_for_a_missing_gpu_is_one_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(OmnipipeError, match=r"^--device cuda: CUDA is not available on this machine; use --device cpu$"):
        run_training(dataclasses.replace(_settings(tmp_path), device="cuda"), lambda ctx: LinearRegression(ctx, tmp_path))
