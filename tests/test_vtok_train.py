"""Training VTok on the shared loop (frozen or fine-tuned OmniTokenizer), comparing it, and its spec's bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from omnipipe.cli import main
from omnipipe.errors import SpecError
from omnipipe.generate.contract import TokenLayout, TokenLayoutError
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.train.paths import StagePaths
from omnipipe.train.trainer import train_stage
from omnipipe.vtok import VTok
from omnipipe.vtok.compare import compare_vtok
from omnipipe.vtok.task import train_vtok
from training_setup import COMPILED_LOSS_TOLERANCE, logged_series, make_experiment, write_media

VTOK = """\
vtok:
  vt:
    tokenizer: joint
    tokenizer_training: {training}
    model:
      residual_quantizer: {{type: vq, codebook_size: 8, code_dim: 4}}
      predictor: {{width: 32, num_heads: 2, spatial: [{{type: full}}]}}
      residual_width: 32
    train: {{steps: 4, batch_size: 2, checkpoint_every: 2, optimizer: {{lr: 0.003}}}}
    compare: {{metrics: [{{type: psnr}}, {{type: ssim}}], motion_classes: ["*"]}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment folder whose image_pretrain and joint stages are trained (shared by the tests)."""
    root = tmp_path_factory.mktemp("vtok")
    write_media(root, videos=4)
    _, spec = make_experiment(root, val_fraction=0.5, extra=VTOK.format(training="frozen"))
    for stage in ("image_pretrain", "joint"):
        train_stage(spec, stage, get_registry())
    return root


def experiment(trained: Path, tmp_path: Path, training: str):
    root = tmp_path / "exp"
    shutil.copytree(trained, root)
    spec_path, spec = make_experiment(root, val_fraction=0.5, extra=VTOK.format(training=training))
    return spec_path, spec


@pytest.mark.parametrize("training", ["frozen", "finetune"])
def test_frozen_keeps_the_tokenizer_and_finetune_trains_it(trained: Path, tmp_path: Path, training: str) -> None:
    _, spec = experiment(trained, tmp_path, training)
    joint = load_file(str(StagePaths.of(spec, "joint").model_file))
    paths = train_vtok(spec, "vt", get_registry())
    weights = load_file(str(paths.model_file))
    base = {name[len("base.") :]: value for name, value in weights.items() if name.startswith("base.")}
    assert base.keys() == joint.keys()
    changed = [name for name in joint if not torch.equal(base[name], joint[name])]
    if training == "frozen":
        assert changed == []
    else:
        assert "decoder.blocks.0.attn.qkv.weight" in changed
    fresh = VTok.from_checkpoint(paths.model_file)
    assert fresh.spec.residual_quantizer.params.codebook_size == 8
    metrics = json.loads((paths.live_dir / "metrics.json").read_text())
    assert metrics["step"] == 4 and metrics["loss"]["latent"] > 0  # dvclive logs every term


def test_compare_measures_vtok_plain_and_key_held_on_later_frames(trained: Path, tmp_path: Path) -> None:
    _, spec = experiment(trained, tmp_path, "frozen")
    train_vtok(spec, "vt", get_registry())
    results = compare_vtok(spec, "vt", get_registry())
    assert results["tokens"]["16x16"] == {"frames": 5, "grid": [2, 4, 4], "vtok_tokens": 20, "vtok_key_tokens": 16,
                                           "vtok_residual_tokens": 4, "plain_tokens": 32, "vtok_bits": 16 * 6 + 4 * 3,
                                           "plain_bits": 32 * 6}  # fmt: skip
    assert results["clips"] == results["moving_clips"] > 0
    for version in ("vtok", "plain", "key_held", "unit_latents"):
        assert {"psnr", "ssim", "position_error_px"} <= results[version].keys()
    root = StagePaths.of(spec, "vt").out_dir / "compare"
    assert results["by_group"].keys() == {"moving"}  # every class matches motion_classes ["*"] here
    for version in ("vtok", "plain", "key_held", "unit_latents"):  # per-clip means of the one group = the metric
        assert results["by_group"]["moving"][version]["psnr"] == pytest.approx(results[version]["psnr"], rel=1e-6)
    assert (root / "frames.png").is_file() and (root / "summary.md").read_text().count("| psnr |") == 2
    rows = (root / "per_clip.csv").read_text().splitlines()
    assert len(rows) == 1 + results["clips"]


def test_resumed_vtok_training_continues_from_its_checkpoint(trained: Path, tmp_path: Path, capsys) -> None:
    spec_path, spec = experiment(trained, tmp_path, "frozen")
    train_vtok(spec, "vt", get_registry())
    straight = load_file(str(StagePaths.of(spec, "vt").model_file))
    checkpoints = StagePaths.of(spec, "vt").checkpoints
    shutil.rmtree(checkpoints / "step-000004")
    assert main(["train-vtok", "--spec", str(spec_path), "--name", "vt", "--resume"]) == 0
    assert "resuming stage 'vt' at step 2" in capsys.readouterr().out
    resumed = load_file(str(StagePaths.of(spec, "vt").model_file))
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


BAD = {
    "tokenizer: joint": ("tokenizer: jiont", "vtok.vt.tokenizer: 'jiont' is not a training stage"),
    "{type: vq, codebook_size: 8, code_dim: 4}": ("{type: kl, latent_channels: 4}",
                                                  "stage 'joint' gives codes but this bottleneck gives latents"),
    "spatial: [{type: full}]}\n      residual": ("spatial: [{type: full}], temporal: [{type: causal}]}\n      residual",
                                                 "vtok.vt.model.predictor.temporal: the predictor works on one frame"),
    "  vt:\n": ("  joint:\n", "vtok.joint: 'joint' is also a train.stages key"),
}


@pytest.mark.parametrize("good", list(BAD))
def test_bad_vtok_specs_fail_with_one_line(tmp_path: Path, good: str) -> None:
    bad, message = BAD[good]
    text = VTOK.format(training="frozen").replace(good, bad)
    root = tmp_path
    write_media(root, images=2, videos=1)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        make_experiment(root, extra=text)
    assert len(str(error.value).splitlines()) == 1


def test_unknown_vtok_name_on_the_command_line(trained: Path, tmp_path: Path, capsys) -> None:
    spec_path, _ = experiment(trained, tmp_path, "frozen")
    assert main(["train-vtok", "--spec", str(spec_path), "--name", "vtt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no entry 'vtt' in the vtok section (entries: vt)" in err[0] and "did you mean" in err[0]


def test_a_one_frame_clip_spec_is_refused(tmp_path: Path) -> None:
    write_media(tmp_path, images=2, videos=1)
    path, _ = make_experiment(tmp_path, extra=VTOK.format(training="frozen"))
    text = path.read_text().replace("clip_frames: 5", "clip_frames: 1")
    path.write_text(text)
    with pytest.raises(SpecError, match="vtok 'vt' needs clips of at least 2 frames"):
        load_spec(path)


def test_reconstruct_and_tokenize_with_a_vtok_checkpoint(trained: Path, tmp_path: Path, capsys) -> None:
    _, spec = experiment(trained, tmp_path, "frozen")
    checkpoint = str(train_vtok(spec, "vt", get_registry()).model_file)
    videos = tmp_path / "exp" / "videos"
    video = sorted(videos.rglob("*.mp4"))[0]
    assert main(["reconstruct", "--checkpoint", checkpoint, str(video), "--out", str(tmp_path / "r"),
                 "--resolution", "16x16", "--frames", "5"]) == 0  # fmt: skip
    assert "(5 frames, 16×16)" in capsys.readouterr().out
    assert main(["tokenize", "--checkpoint", checkpoint, "--input", str(videos), "--out", str(tmp_path / "t"),
                 "--resolution", "16x16", "--frames", "5"]) == 0  # fmt: skip
    index = json.loads((tmp_path / "t" / "index.json").read_text())
    layout = TokenLayout.from_json(index["layouts"]["video-1x4x4+4x1x1.npy"])
    rows = np.load(tmp_path / "t" / "video-1x4x4+4x1x1.npy")
    assert rows.shape == (4, 16 + 4) and layout.length == 20 and index["codebook_size"] == 64
    layout.check(torch.from_numpy(rows).long())  # key codes < 64, residual codes < 8
    image = sorted((tmp_path / "exp" / "images").rglob("*.png"))[0]
    capsys.readouterr()
    assert main(["reconstruct", "--checkpoint", checkpoint, str(image), "--out", str(tmp_path / "r2"), "--resolution", "16x16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{image}: VTok needs clips of at least 2 frames" in err[0]


GENERATE = """\
generate:
  tokens:
    clips_vtok: {tokenizer: vt, kind: video}
  generators:
    g:
      tokens: clips_vtok
      class_conditional: false
      model: {type: ar, width: 32, depth: 1, num_heads: 2}
      train: {steps: 2, batch_size: 2, checkpoint_every: 2}
      sample: {count: 2, prefix_frames: [0, 1]}
"""


def test_vtok_token_dataset_records_the_layout_and_ar_generates_and_predicts_from_the_key_frame(
    trained: Path, tmp_path: Path
) -> None:
    from omnipipe.generate.encode import encode_tokens
    from omnipipe.generate.paths import GenerationPaths
    from omnipipe.generate.real_clips import real_pixels
    from omnipipe.generate.sample import read_run, sample_generator
    from omnipipe.generate.task import GeneratorTask, generator_loop_settings
    from omnipipe.train.loop import run_training

    root = tmp_path / "exp"
    shutil.copytree(trained, root)
    _, spec = make_experiment(root, val_fraction=0.5, extra=VTOK.format(training="frozen") + GENERATE)
    registry = get_registry()
    vtok_file = train_vtok(spec, "vt", registry).model_file
    data = encode_tokens(spec, "clips_vtok", registry, device="cpu", progress=False)
    assert [(s.name, s.grid, s.vocab_size, s.time_offset) for s in data.layout.segments] == [
        ("key", (1, 4, 4), 64, 0), ("residual", (4, 1, 1), 8, 1)]  # N + T: 16 key tokens, 4 residual tokens
    model = VTok.from_checkpoint(vtok_file)
    val = data.split("val")
    pixels, _ = next(real_pixels(spec.data.prepared_dir, data, "val", val.originals(), 64))
    with torch.no_grad():
        expected = model.to_sequence(model.tokenize(pixels))
    assert torch.equal(val.tokens(val.originals()), expected)  # shards round-trip to what VTok gives those clips

    run_training(generator_loop_settings(spec, "g", device="cpu"), lambda ctx: GeneratorTask(spec, "g", registry, ctx))
    summary = sample_generator(spec, "g", registry, device="cpu")
    assert summary["runs"]["generate"]["sequence_length"] == 20 and summary["runs"]["generate"]["seconds_per_sample"] > 0
    samples = GenerationPaths.of(spec).samples("g")
    written = (samples / "summary.json").read_bytes()
    assert "seconds_per_sample" not in json.loads(written)["runs"]["generate"]  # timings change every run: not in the DVC output
    sample_generator(spec, "g", registry, device="cpu")
    assert (samples / "summary.json").read_bytes() == written  # same seed, same samples: the same bytes for DVC
    generated, _, _ = read_run(samples / "generate")
    data.layout.check(generated)  # key codes < 64, residual codes < 8
    predicted, _, rows = read_run(samples / "predict-1")
    assert torch.equal(predicted[:, :16], val.tokens(rows)[:, :16])  # frame prediction keeps the key frame's tokens

    index = data.root / "index.json"
    text = json.loads(index.read_text())
    text["layout"]["segments"][1]["vocab_size"] = 16  # shards written with another residual codebook
    index.write_text(json.dumps(text))
    with pytest.raises(TokenLayoutError, match=r"do not match the tokenizer .*vt/model\.safetensors \(segment 'residual': "
                                               r"vocabulary 16 in the shards, 8 from the tokenizer\); encode the tokens again"):
        sample_generator(spec, "g", registry, device="cpu")


def test_train_vtok_compile_follows_the_eager_losses(trained: Path, tmp_path: Path) -> None:
    """``train-vtok --compile`` (the fine-tuned tokenizer and the residual path, compiled) trains like the eager run."""
    losses = {}
    for flag in ([], ["--compile"]):
        spec_path, spec = experiment(trained, tmp_path / ("compiled" if flag else "eager"), "finetune")
        torch._dynamo.utils.counters.clear()
        assert main(["train-vtok", "--spec", str(spec_path), "--name", "vt", *flag]) == 0
        assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) == bool(flag)  # it did compile
        losses[bool(flag)] = logged_series(StagePaths.of(spec, "vt").live_dir, "loss/total")
    assert len(losses[False]) == 4
    assert losses[True] == pytest.approx(losses[False], rel=COMPILED_LOSS_TOLERANCE), losses
