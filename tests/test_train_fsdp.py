"""FSDP2 in the generic loop: two gloo ranks train what one process trains; sharded checkpoints resume exactly,
on the same or on another number of ranks."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fsdp_regression import train
from safetensors.torch import load_file

from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.loop import TrainingError
from omnipipe.train.sharded_checkpoint import SHARDED_DIR

WORKER = Path(__file__).with_name("fsdp_regression.py")


def on_two_ranks(root: Path, steps: int, *extra: str) -> str:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launch, str(WORKER), str(root), str(steps), *extra], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:  # the ranks' gradients are averaged: the same sums in another order
        assert torch.allclose(a[name], b[name], rtol=1e-5, atol=1e-6), (name, (a[name] - b[name]).abs().max())


def test_fsdp_on_two_ranks_trains_what_one_process_trains_and_resumes_on_two_or_one(tmp_path: Path) -> None:
    single = weights(train(tmp_path / "single", 20))
    plain = weights(train(tmp_path / "plain", 20, fsdp=False))
    assert all(torch.equal(single[name], plain[name]) for name in plain)  # one process: sharded checkpoints only
    assert not torch.allclose(single["0.weight"], weights(train(tmp_path / "short", 10))["0.weight"])  # it trains

    assert "model sharded over 2 ranks (FSDP2)" in on_two_ranks(tmp_path / "two", 20)
    two = weights(tmp_path / "two/model.safetensors")
    assert_close(two, single)
    step_10 = CheckpointStore(tmp_path / "two/ckpt", keep_last=5).path(10)
    assert sorted(p.name for p in (step_10 / SHARDED_DIR).iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]

    for name in ("again", "onto-one"):
        shutil.copytree(tmp_path / "two/ckpt", tmp_path / name / "ckpt")
        shutil.rmtree(tmp_path / name / "ckpt/step-000020")  # as if the run had stopped after step 10
    assert "resuming stage 'sharded' at step 10" in on_two_ranks(tmp_path / "again", 20, "--resume")
    again = weights(tmp_path / "again/model.safetensors")
    assert all(torch.equal(again[name], two[name]) for name in two)  # 2 ranks → 2 ranks: bit-exact
    assert_close(weights(train(tmp_path / "onto-one", 20, resume=True)), single)  # 2 ranks → 1 process


def test_a_damaged_shard_falls_back_and_fp16_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    straight = weights(train(tmp_path, 20))
    shard = next((tmp_path / "ckpt/step-000020" / SHARDED_DIR).glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    capsys.readouterr()
    resumed = weights(train(tmp_path, 20, resume=True))
    assert f"step-000020: damaged checkpoint ({SHARDED_DIR}/{shard.name} does not match its checksum); skipped" in capsys.readouterr().out
    assert all(torch.equal(resumed[name], straight[name]) for name in straight)
    import dataclasses

    from fsdp_regression import ShardedRegression

    from omnipipe.train.loop import LoopSettings, run_training

    settings = LoopSettings(name="half", steps=1, checkpoints=tmp_path / "h", live_dir=tmp_path / "hl", fsdp=True, device="cpu")
    with pytest.raises(TrainingError, match=r"^stage 'half': fsdp trains in fp32 or bf16, not fp16"):
        run_training(dataclasses.replace(settings, precision="fp16"), lambda ctx: ShardedRegression(ctx, tmp_path / "o"))
