"""``--compile``: training through torch.compile matches eager training, random draws included, and resumes across the flag."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from omnipipe.cli import main
from omnipipe.errors import OmnipipeError
from omnipipe.generate.paths import GenerationPaths
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import load_spec
from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.compiled import compiled_for_training
from omnipipe.train.tokenizer_task import stage_model_spec
from omnipipe.train.trainer import train_stage
from test_generate_training import _spec as generator_spec
from test_generate_training import write_tokens
from training_setup import COMPILED_LOSS_TOLERANCE, logged_series, make_experiment, restart_codes_early, write_media

@pytest.fixture
def spec(tmp_path: Path) -> Experiment:
    """The training tests' experiment with a dead-code threshold that restarts codes early (random draws in the forward)."""
    write_media(tmp_path)
    path, _ = make_experiment(tmp_path, steps=8, checkpoint_every=4)
    restart_codes_early(path)
    return load_spec(path, get_registry())


def _generator_experiment(root: Path, **entry: object) -> tuple[Experiment, Path]:
    """The generator tests' spec (generator ``g`` on 40 labelled token sequences) and its file under ``root``."""
    spec = generator_spec(root, **entry)
    write_tokens(GenerationPaths.of(spec).tokens("digits"), {"train": np.arange(40) % 3, "val": np.arange(9) % 3})
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    return spec, spec_file


def _step(net: torch.nn.Module, model: Tokenizer, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One training forward and backward; the loss, and the gradients and codebook state it leaves."""
    model.zero_grad(set_to_none=True)
    out = net(pixels)
    loss = (out.reconstruction - pixels).abs().mean() + sum(out.quantizer.losses.values())
    loss.backward()
    grads = {f"grad {name}": p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads | {name: b.clone() for name, b in model.named_buffers()}


def test_a_compiled_step_gives_the_eager_gradients_and_draws_the_same_restarts(spec: Experiment) -> None:
    torch.manual_seed(0)
    stage = spec.train.stages["image_pretrain"]
    model = Tokenizer.from_spec(stage_model_spec(spec, stage), get_registry()).train()
    pixels = torch.rand(4, 3, 1, 16, 16) * 2 - 1
    start, rng = {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state()
    eager_loss, eager = _step(model, model, pixels)
    eager_rng = torch.get_rng_state()
    model.load_state_dict(start)
    torch.set_rng_state(rng)
    compiled_loss, compiled = _step(compiled_for_training(model, torch.device("cpu")), model, pixels)
    assert torch.equal(torch.get_rng_state(), eager_rng)  # restarts drew through torch's own generator, as often
    assert not torch.equal(eager["quantizer.codebook"], start["quantizer.codebook"])  # restarts did happen
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=0)
    assert compiled.keys() == eager.keys()
    for name, value in eager.items():  # equal up to float rounding (measured: ≤ 1e-6 of each tensor's largest)
        torch.testing.assert_close(compiled[name], value, rtol=0, atol=1e-5 * float(value.abs().max()), msg=lambda m, n=name: f"{n}: {m}")


def test_a_compiled_stage_follows_the_eager_losses_and_resumes_without_compiling(
    spec: Experiment, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = train_stage(spec, "image_pretrain", get_registry())
    eager_losses, restarts = logged_series(paths.live_dir, "loss/total"), logged_series(paths.live_dir, "codebook/restarted")
    assert sum(restarts) > 0, restarts
    outputs = Path(spec.outputs.dir)
    shutil.move(outputs, outputs.with_name("outputs-eager"))

    torch._dynamo.utils.counters.clear()
    train_stage(spec, "image_pretrain", get_registry(), compile=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    # Adam turns rounding-level gradient differences into weight differences of up to a step, so only losses
    # compare, to COMPILED_LOSS_TOLERANCE (the loss moves 1–13 % per step)
    assert logged_series(paths.live_dir, "loss/total") == pytest.approx(eager_losses, rel=COMPILED_LOSS_TOLERANCE)
    assert logged_series(paths.live_dir, "codebook/restarted") == restarts

    shutil.rmtree(CheckpointStore(paths.checkpoints, keep_last=10).path(8))  # as if stopped after step 4
    paths.model_file.unlink()
    capsys.readouterr()
    train_stage(spec, "image_pretrain", get_registry(), resume=True)  # eager now: compiling is a speed choice
    assert "resuming stage 'image_pretrain' at step 4" in capsys.readouterr().out
    assert logged_series(paths.live_dir, "loss/total") == pytest.approx(eager_losses, rel=COMPILED_LOSS_TOLERANCE)
    assert paths.model_file.is_file()


def test_train_generator_compile_draws_the_eager_class_dropout_and_follows_its_losses(tmp_path: Path) -> None:
    """The ``ar`` generator's loss draws class dropout inside the forward: compiled, the draws stay torch's own."""
    losses = {}
    for compile_flag in ([], ["--compile"]):
        root = tmp_path / (compile_flag[0][2:] if compile_flag else "eager")
        spec, spec_file = _generator_experiment(root)
        torch._dynamo.utils.counters.clear()
        assert main(["train-generator", "--spec", str(spec_file), "--generator", "g", "--device", "cpu", *compile_flag]) == 0
        losses[root.name] = logged_series(GenerationPaths.of(spec).live_dir("g"), "loss/total")
        assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) == bool(compile_flag)  # it did compile
    assert len(losses["eager"]) == 6
    assert losses["compile"] == pytest.approx(losses["eager"], rel=COMPILED_LOSS_TOLERANCE)


def test_compile_without_a_cpu_compiler_or_with_fsdp_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++ or clang++ here
    with pytest.raises(OmnipipeError, match=r"^--compile on CPU builds C\+\+ kernels, but no compiler \(g\+\+ or clang\+\+\) is on PATH"):
        compiled_for_training(torch.nn.Linear(2, 2), torch.device("cpu"))
    monkeypatch.undo()
    _, spec_file = _generator_experiment(tmp_path, train={"steps": 2, "batch_size": 4, "fsdp": True})
    assert main(["train-generator", "--spec", str(spec_file), "--generator", "g", "--device", "cpu", "--compile"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "omnipipe: error: stage 'g': --compile is not supported with fsdp yet; leave one of them out"
    )


def test_two_ddp_ranks_compiled_train_like_eager_ones(tmp_path: Path) -> None:
    """torchrun with --compile: the replicas stay identical and follow the eager DDP run, dead-code restarts included."""
    series = {}
    for flag in ([], ["--compile"]):
        root = tmp_path / ("compiled" if flag else "eager")
        write_media(root)
        path, _ = make_experiment(root, steps=4, batch_size=2, checkpoint_every=4)
        restart_codes_early(path)
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        run = subprocess.run([*launch, "-m", "omnipipe.cli", "train", "--stage", "image_pretrain", "--spec", str(path), *flag],
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert "replicas identical across 2 ranks (weights and codebook)" in run.stdout
        live = root / "outputs/unit/image_pretrain/live"
        series[bool(flag)] = (logged_series(live, "loss/total"), logged_series(live, "codebook/restarted"))
    assert sum(series[False][1]) > 0 and series[True][1] == series[False][1]
    assert series[True][0] == pytest.approx(series[False][0], rel=COMPILED_LOSS_TOLERANCE)
