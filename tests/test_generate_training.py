"""Generator training through the shared loop: bit-exact resume, and spec/shard mismatches before any work."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from omnipipe.generate.checkpoint import load_generator
from omnipipe.generate.contract import TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.task import GeneratorMismatch, GeneratorTask, generator_loop_settings
from omnipipe.generate.token_dataset import FORMAT, TokenDataset, chunk_path
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec
from omnipipe.train.distributed import DistContext
from omnipipe.train.loop import run_training

TINY = Path(__file__).resolve().parents[1] / "pipelines" / "tiny.yaml"
LAYOUT = TokenLayout.grid_of("codes", (1, 3, 3), 8, num_classes=3)


def write_tokens(root: Path, labels: dict[str, np.ndarray], layout: TokenLayout = LAYOUT, seed: int = 0) -> None:
    """A token dataset in the format encode-tokens writes: codes whose first token is the label (or latents whose
    first value is)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, split_labels in labels.items():
        if layout.kind == "codes":
            tokens = rng.integers(0, layout.vocab_size, (len(split_labels), layout.length)).astype(np.int32)
        else:
            tokens = rng.normal(1.0, 2.0, (len(split_labels), layout.length, layout.channels)).astype(np.float32)
        tokens[:, 0] = np.maximum(split_labels, 0).reshape(-1, *[1] * (tokens.ndim - 2))
        arrays = {"tokens": tokens, "labels": split_labels.astype(np.int64),
                  "clips": np.arange(len(split_labels)), "flipped": np.zeros(len(split_labels), bool)}  # fmt: skip
        chunk = {"count": len(split_labels)}
        for name, array in arrays.items():
            (root / split).mkdir(parents=True, exist_ok=True)
            np.save(root / chunk_path(split, 0, name), array)
            chunk[name] = chunk_path(split, 0, name)
        splits[split] = [chunk]
    index = {"format": FORMAT, "layout": layout.to_json(), "classes": [f"c{i}" for i in range(layout.num_classes)],
             "kind": "image", "resolution": [12, 12], "tokenizer": "joint", "flip": False, "fingerprint": "synthetic",
             "splits": splits}  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))


def _spec(tmp_path: Path, **entry: object):  # noqa: ANN202
    data = yaml.safe_load(TINY.read_text())
    data["outputs"] = {"dir": str(tmp_path / "outputs")}
    generator = {"tokens": "digits", "model": {"type": "ar", "width": 32, "depth": 1, "num_heads": 2},
                 "train": {"steps": 6, "batch_size": 4, "checkpoint_every": 3, "eval_every": 3}, **entry}  # fmt: skip
    data["generate"]["generators"] = {"g": generator}
    return parse_spec(yaml.safe_dump(data), "tiny.yaml", get_registry())


def _train(spec, resume: bool = False, steps: int | None = None):  # noqa: ANN001, ANN202
    settings = generator_loop_settings(spec, "g", device="cpu")
    if steps is not None:
        settings = type(settings)(**{**settings.__dict__, "steps": steps})
    return run_training(settings, lambda ctx: GeneratorTask(spec, "g", get_registry(), ctx), resume=resume)


def test_training_resumes_bit_exactly_and_writes_a_loadable_generator(tmp_path: Path) -> None:
    labels = {"train": np.arange(40) % 3, "val": np.arange(9) % 3}
    spec = _spec(tmp_path)
    write_tokens(GenerationPaths.of(spec).tokens("digits"), labels)
    straight = _train(spec)
    model_file = GenerationPaths.of(spec).model_file("g")
    weights = load_file(str(model_file))
    assert "val/bits_per_token" in straight.last and straight.last["val/bits_per_token"] > 0
    store = GenerationPaths.of(spec).checkpoints("g")
    for step in store.iterdir():  # keep only step 3: as if killed after it
        if step.name != "step-000003":
            shutil.rmtree(step)
    _train(spec, resume=True)
    resumed = load_file(str(model_file))
    assert weights.keys() == resumed.keys() and all(torch.equal(weights[k], resumed[k]) for k in weights)
    model = load_generator(model_file, get_registry())
    assert model.layout == LAYOUT
    assert model.sample(torch.tensor([0, 2]), generator=torch.Generator().manual_seed(0)).shape == (2, 9)


@pytest.mark.parametrize(
    ("entry", "labels", "message"),
    [
        ({"num_classes": 7}, None, r"generate\.generators\.g\.num_classes: 7 does not match the 3 classes of .*index\.json"),
        ({"vocab_size": 256}, None, r"generate\.generators\.g\.vocab_size: 256 does not match the vocabulary 8 of .*index\.json"),
        ({"grid": [1, 8, 8]}, None, r"generate\.generators\.g\.grid: \[1, 8, 8\] does not match the grid \[1, 3, 3\]"),
        ({}, {"train": np.array([0, 1, -1, 2] * 10), "val": np.arange(9) % 3},
         r"generate\.generators\.g: a class-conditional generator needs labelled data, but 10 of 40 train sequences"),
    ],
)
def test_spec_and_shards_that_disagree_stop_before_any_work(tmp_path: Path, entry: dict, labels, message: str) -> None:  # noqa: ANN001
    spec = _spec(tmp_path, **entry)
    write_tokens(GenerationPaths.of(spec).tokens("digits"), labels or {"train": np.arange(40) % 3, "val": np.arange(9) % 3})
    with pytest.raises(GeneratorMismatch, match=message):
        GeneratorTask(spec, "g", get_registry(), DistContext(0, 1, torch.device("cpu")))


def test_an_unconditional_generator_trains_on_unlabelled_tokens(tmp_path: Path) -> None:
    spec = _spec(tmp_path, class_conditional=False)
    write_tokens(GenerationPaths.of(spec).tokens("digits"), {"train": np.full(40, -1), "val": np.full(9, -1)})
    task = GeneratorTask(spec, "g", get_registry(), DistContext(0, 1, torch.device("cpu")))
    assert task.model.layout.num_classes == 0
    batch = next(task.batches(0))
    assert batch.tokens.shape == (4, 9) and bool((batch.labels == -1).all())
    assert TokenDataset.load(GenerationPaths.of(spec).tokens("digits")).split("train").labels.min() == -1


def test_fsdp_trains_the_generator_that_ddp_trains(tmp_path: Path) -> None:
    """The same two ranks, batches and random streams (the loss draws class dropout): only the sharding differs."""
    import os
    import subprocess
    import sys

    labels = {"train": np.arange(40) % 3, "val": np.arange(9) % 3}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    outputs, said = {}, {}
    for fsdp in (False, True):
        spec = _spec(tmp_path / str(fsdp), train={"steps": 4, "batch_size": 4, "checkpoint_every": 2, "eval_every": 2, "fsdp": fsdp})
        write_tokens(GenerationPaths.of(spec).tokens("digits"), labels)
        spec_file = tmp_path / str(fsdp) / "spec.yaml"
        spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
        run = subprocess.run([*launch, "-m", "omnipipe.cli", "train-generator", "--spec", str(spec_file), "--generator", "g", "--device", "cpu"],
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        outputs[fsdp], said[fsdp] = load_file(str(GenerationPaths.of(spec).model_file("g"))), run.stdout
    assert "model sharded over 2 ranks (FSDP2)" in said[True] and "replicas identical across 2 ranks" in said[False]
    assert outputs[False].keys() == outputs[True].keys()
    for key in outputs[False]:  # gradients reduce-scattered instead of all-reduced: the same sums
        assert torch.allclose(outputs[False][key], outputs[True][key], rtol=1e-5, atol=1e-6), (key, (outputs[False][key] - outputs[True][key]).abs().max())
