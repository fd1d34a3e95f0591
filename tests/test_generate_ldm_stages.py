"""``ldm`` through the generation stages: latent statistics fitted on the train shards, checks against the shards,
sampling variants."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_generate_training import TINY, write_tokens

from omnipipe.errors import SpecError
from omnipipe.generate.checkpoint import load_generator
from omnipipe.generate.contract import TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.sample import plan_runs
from omnipipe.generate.task import GeneratorMismatch, GeneratorTask, generator_loop_settings
from omnipipe.generate.token_dataset import TokenDataset
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec
from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import run_training

LATENTS = TokenLayout.grid_of("latents", (1, 2, 2), 3, num_classes=3)
LABELS = {"train": np.arange(30) % 3, "val": np.arange(6) % 3}


def _raw(tmp_path: Path, **entry: object) -> dict:
    data = yaml.safe_load(TINY.read_text())
    data["outputs"] = {"dir": str(tmp_path / "outputs")}
    generator = {"tokens": "digit_latents", "model": {"type": "ldm", "width": 16, "depth": 1, "num_heads": 2},
                 "train": {"steps": 4, "batch_size": 4, "ema_decay": 0.9, "checkpoint_every": 2}, **entry}  # fmt: skip
    data["generate"]["generators"] = {"g": generator}
    return data


def _spec(tmp_path: Path, **entry: object):  # noqa: ANN202
    spec = parse_spec(yaml.safe_dump(_raw(tmp_path, **entry)), "tiny.yaml", get_registry())
    write_tokens(GenerationPaths.of(spec).tokens("digit_latents"), LABELS, LATENTS)
    return spec


def test_training_fits_the_latent_scaling_on_every_train_sequence_and_saves_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("omnipipe.generate.task.STATISTICS_ROWS", 7)  # several reads of the train split
    spec = _spec(tmp_path)
    train = TokenDataset.load(GenerationPaths.of(spec).tokens("digit_latents")).split("train")
    every = train.tokens(np.arange(len(train))).reshape(-1, 3).double()
    task = GeneratorTask(spec, "g", get_registry(), DistContext(0, 1, torch.device("cpu")))
    assert torch.allclose(task.model.scaling.mean.double(), every.mean(0), atol=1e-5)
    assert torch.allclose(task.model.scaling.std.double(), every.std(0), atol=1e-5)
    run_training(generator_loop_settings(spec, "g", device="cpu"), lambda ctx: GeneratorTask(spec, "g", get_registry(), ctx))
    model = load_generator(GenerationPaths.of(spec).model_file("g"), get_registry())  # the EMA model
    assert torch.equal(model.scaling.mean, task.model.scaling.mean) and bool(model.scaling.fitted)
    assert model.sample(torch.tensor([0, 2]), generator=torch.Generator().manual_seed(0), steps=2).shape == (2, 4, 3)


def test_latent_channels_that_contradict_the_shards_stop_before_any_work(tmp_path: Path) -> None:
    spec = _spec(tmp_path, latent_channels=8)  # the tiny KL tokenizer says 8; these shards hold 3
    with pytest.raises(GeneratorMismatch, match=r"generate\.generators\.g\.latent_channels: 8 does not match the 3 latent channels of .*index\.json"):
        GeneratorTask(spec, "g", get_registry(), DistContext(0, 1, torch.device("cpu")))


def test_sampling_variants_are_extra_runs_with_their_settings(tmp_path: Path) -> None:
    spec = _spec(tmp_path, sample={"per_class": 2, "settings": {"steps": 20, "cfg_scale": 3.0},
                                   "variants": {"euler-100": {"steps": 100}, "heun": {"sampler": "heun"}}})  # fmt: skip
    data = TokenDataset.load(GenerationPaths.of(spec).tokens("digit_latents"))
    runs = {run.name: run for run in plan_runs(spec, "g", data, LATENTS)}
    assert list(runs) == ["generate", "generate-euler-100", "generate-heun"]
    assert (runs["generate-euler-100"].settings.steps, runs["generate-euler-100"].settings.cfg_scale) == (100, 3.0)
    assert (runs["generate-heun"].settings.sampler, runs["generate-heun"].settings.steps) == ("heun", 20)
    assert torch.equal(runs["generate-heun"].labels, runs["generate"].labels) and runs["generate"].variant is None


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"fast": {"steps": 0}}, r"tiny\.yaml:\d+: generate\.generators\.g\.sample\.variants\.fast\.steps: Input should be greater than 0"),
        ({"odd": {"sampler": "rk4"}}, r"generate\.generators\.g\.sample\.variants\.odd\.sampler: Input should be 'euler', 'heun' or 'ddim'"),
        ({"Bad Name": {"steps": 2}}, r"generate\.generators\.g\.sample\.variants\.Bad Name"),
    ],
)
def test_bad_variants_are_one_line(tmp_path: Path, variants: dict, message: str) -> None:
    text = yaml.safe_dump(_raw(tmp_path, sample={"variants": variants}))
    with pytest.raises(SpecError, match=message):
        parse_spec(text, "tiny.yaml", get_registry())
