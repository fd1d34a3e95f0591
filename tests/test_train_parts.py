"""Pieces of the trainer: schedule values, weight EMA, checkpoint publishing and pruning, accumulation."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from omnipipe.nn.vq import VectorQuantizer
from omnipipe.plugins import get_registry
from omnipipe.spec.train import ScheduleSpec
from omnipipe.train.checkpoint import CheckpointError, CheckpointStore
from omnipipe.train.ema import WeightEMA
from omnipipe.train.schedule import lr_factor
from omnipipe.train.trainer import train_stage
from training_setup import make_experiment, write_media


def test_warmup_then_cosine_to_the_floor() -> None:
    factor = lr_factor(ScheduleSpec(name="cosine", warmup_steps=4, min_lr_ratio=0.1), total_steps=14)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == pytest.approx(1.0)
    assert factor(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factor(14) == pytest.approx(0.1) and factor(100) == pytest.approx(0.1)
    constant = lr_factor(ScheduleSpec(name="constant", warmup_steps=2), total_steps=10)
    assert [constant(s) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]


def test_weight_ema_follows_the_formula() -> None:
    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, decay=0.9)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow.weight, 0.9 * before + 0.1 * model.weight)
    assert not ema.shadow.weight.requires_grad


def test_ema_model_averages_the_codebook_with_the_projections() -> None:
    torch.manual_seed(0)
    vq = VectorQuantizer(VectorQuantizer.Params(codebook_size=16, code_dim=4, decay=0.5, dead_code_threshold=0), dim=8)
    vq.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))
    ema = WeightEMA(vq, decay=0.8)
    expected = {name: value.clone() for name, value in vq.state_dict().items()}
    for step in range(3):
        vq.train()(torch.randn(2, 1, 4, 4, 8))  # moves the codebook and cluster sizes (EMA k-means)
        with torch.no_grad():
            vq.proj_in.weight.add_(0.1)
            vq.steps_seen.add_(1)
        ema.update(vq)
        for name, value in vq.state_dict().items():  # the reference: every float entry averaged alike
            expected[name] = 0.8 * expected[name] + 0.2 * value if value.is_floating_point() else value.clone()
    shadow = ema.shadow.state_dict()
    for name in ("codebook", "embed_sum", "cluster_size", "proj_in.weight"):
        assert torch.allclose(shadow[name], expected[name], atol=1e-6), name
        assert not torch.allclose(shadow[name], vq.state_dict()[name]), name  # not the live model's
    assert int(shadow["steps_seen"]) == 3  # counters are copied


def test_checkpoints_are_published_whole_and_pruned(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep_last=2)
    model = torch.nn.Linear(3, 3)
    (tmp_path / "ckpt" / ".partial-000009-x").mkdir(parents=True)  # left by a run killed mid-write
    for step in (1, 2, 3):
        store.save(step, {"model": model}, {"note": step})
    assert store.steps() == [2, 3]
    assert not list((tmp_path / "ckpt").glob(".partial-*"))
    fresh = torch.nn.Linear(3, 3)
    state = store.load(store.latest(), {"model": fresh})
    assert state == {"note": 3, "step": 3} and torch.equal(fresh.weight, model.weight)
    (store.latest() / "trainer.pt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"step-000003: cannot load checkpoint"):
        store.load(store.latest(), {"model": fresh})


def test_gradient_accumulation_consumes_micro_batches_and_keeps_ema(tmp_path: Path) -> None:
    write_media(tmp_path)
    _, spec = make_experiment(tmp_path, steps=2, batch_size=2, checkpoint_every=2)
    stage = spec.train.stages["image_pretrain"]
    stage.grad_accum = 3
    stage.ema_decay = 0.5
    paths = train_stage(spec, "image_pretrain", get_registry())
    store = CheckpointStore(paths.checkpoints, keep_last=10)
    state = torch.load(store.latest() / "trainer.pt", weights_only=True)
    assert state["step"] == 2 and state["batches_consumed"] == 6
    assert (store.latest() / "ema.safetensors").is_file()
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(paths.model_file))["encoder.norm.weight"],
                       load_file(str(store.latest() / "ema.safetensors"))["encoder.norm.weight"])  # fmt: skip
