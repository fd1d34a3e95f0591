"""Evaluation end to end on a small trained tokenizer; reconstruct and tokenize on real files."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from omnipipe.cli import main
from omnipipe.evaluate.run import EvaluationPaths, evaluate, skipped_labels
from omnipipe.evaluate.stages import bottleneck_of, evaluated_stages
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.train.paths import StagePaths
from omnipipe.train.trainer import train_stage
from training_setup import make_experiment, write_media

EVALUATE = """
evaluate:
  stages: [image_pretrain, joint]
  batch_size: 4
  visual_samples: 2
  bootstrap: 50
  metrics: [{type: psnr}, {type: ssim}, {type: codebook_usage}, {type: compression},
            {type: lpips, backbone_path: /nonexistent/alexnet.pth}]
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("evaluate")
    write_media(root, images=12, videos=3)
    path, spec = make_experiment(root, steps=30, batch_size=4, checkpoint_every=30, val_fraction=0.3, extra=EVALUATE)
    train_stage(spec, "image_pretrain", get_registry())
    train_stage(spec, "joint", get_registry())
    return path, spec


def test_evaluate_measures_every_stage_next_to_the_baseline(trained) -> None:
    _, spec = trained
    results = evaluate(spec, get_registry())
    paths = EvaluationPaths.of(spec)
    saved = json.loads(paths.report.read_text())
    assert saved == json.loads(json.dumps(results))
    numbers = json.loads(paths.metrics.read_text())  # what `dvc metrics show` reads: numbers only
    assert set(numbers) == {"samples", "image_pretrain", "joint", "baseline_bicubic"} and numbers["joint"] == saved["joint"]
    assert list(saved["stages"]) == ["image_pretrain", "joint"]
    for stage, info in saved["stages"].items():
        model = StagePaths.of(spec, stage).model_file
        assert info["path"] == str(model) and info["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
        assert info["bottleneck"] == "vq" and info["steps"] == spec.train.stages[stage].steps
    samples = saved["samples"]
    assert set(samples) == {"image-16x16", "clip-16x16"} and samples["clip-16x16"]["frames_each"] == 5
    rows = list(csv.DictReader(paths.per_sample.open()))
    assert len(rows) == sum(group["distinct"] for group in samples.values())
    assert sorted(int(r["index"]) for r in rows if r["group"] == "image-16x16") == list(range(samples["image-16x16"]["distinct"]))
    for version in ("image_pretrain", "joint", "baseline_bicubic"):
        for group in samples:
            assert 5 < saved[version][group]["psnr"] < 60 and 0 < saved[version][group]["ssim"] <= 1
            values = [float(r[f"{version}_psnr"]) for r in rows if r["group"] == group]
            assert saved[version][group]["psnr"] == pytest.approx(sum(values) / len(values), rel=1e-6)
            low, high = saved["intervals"][version][group]["psnr"]
            assert min(values) <= low <= saved[version][group]["psnr"] <= high <= max(values)
    assert 0 < saved["joint"]["image-16x16"]["codebook_usage"] <= 1
    assert saved["joint"]["image-16x16"]["tokens_per_image"] == 16  # 16×16 pixels, 4×4 patches
    assert "codebook_usage" not in saved["baseline_bicubic"]["image-16x16"]
    assert saved["unavailable"]["lpips"] == "lpips: no backbone weights file at /nonexistent/alexnet.pth"
    assert saved["bootstrap"] == {"resamples": 50, "confidence": 0.95, "unit": "distinct val sample"}
    assert (paths.grids / "image-16x16.png").is_file()
    videos = sorted(paths.videos.glob("*.mp4"))
    assert len(videos) == min(2, samples["clip-16x16"]["distinct"])
    with av.open(str(videos[0])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (64, 4 * (4 * 16 + 3 * 2), 3)  # target + 3 versions, 2-px gaps, ×4
    summary = paths.summary.read_text()
    assert "| metric | image_pretrain | joint | baseline_bicubic |" in summary and "## Not computed" in summary
    assert f"sha256 `{saved['stages']['joint']['sha256'][:16]}…`" in summary
    only = evaluate(spec, get_registry(), stage="joint")
    assert list(only["stages"]) == ["joint"] and "image_pretrain" not in only


def test_default_stages_are_the_last_of_each_bottleneck() -> None:
    spec = load_spec(Path(__file__).resolve().parents[1] / "pipelines" / "tiny.yaml", get_registry())
    assert evaluated_stages(spec) == ["joint", "kl_finetune"]
    without = spec.model_copy(update={"evaluate": spec.evaluate.model_copy(update={"stages": None})})
    assert evaluated_stages(without) == ["joint", "kl_finetune"]
    assert [bottleneck_of(spec, s) for s in spec.train.stages] == ["vq", "vq", "kl"]
    assert evaluated_stages(spec, "image_pretrain") == ["image_pretrain"]


def test_reconstruct_and_tokenize_real_files(trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, spec = trained
    checkpoint = str(StagePaths.of(spec, "image_pretrain").model_file)
    media = Path(spec.data.sources[0].params.root).parent
    image, video = sorted((media / "images").rglob("*.png"))[0], sorted((media / "videos").rglob("*.mp4"))[0]
    assert main(["reconstruct", "--checkpoint", checkpoint, str(image), str(video), "--out", str(tmp_path / "r"),
                 "--resolution", "16x16", "--frames", "7"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert f"{image.stem}.png: PSNR" in out and "(5 frames, 16×16)" in out  # 7 frames rounded down to 1 + 4
    assert (tmp_path / "r" / f"{video.stem}.mp4").is_file()
    folder = tmp_path / "media"
    shutil.copytree(media / "images", folder / "images")
    shutil.copytree(media / "videos", folder / "videos")
    assert main(["tokenize", "--checkpoint", checkpoint, "--input", str(folder), "--out", str(tmp_path / "t"),
                 "--resolution", "16x16", "--frames", "5"]) == 0  # fmt: skip
    index = json.loads((tmp_path / "t" / "index.json").read_text())
    assert index["kind"] == "codes" and index["codebook_size"] == 64 and len(index["files"]) == 15
    images = np.load(tmp_path / "t" / "image-1x4x4.npy")
    videos = np.load(tmp_path / "t" / "video-2x4x4.npy")
    assert images.shape == (12, 1, 4, 4) and videos.shape == (3, 2, 4, 4)
    first = index["files"][0]
    assert first == {"path": "images/class_0/00.png", "shard": "image-1x4x4.npy", "row": 0, "frames": 1}
    assert images.dtype == np.int32 and 0 <= images.min() and images.max() < 64


def test_bad_resolution_is_one_line(trained, capsys: pytest.CaptureFixture[str]) -> None:
    _, spec = trained
    checkpoint = str(StagePaths.of(spec, "image_pretrain").model_file)
    assert main(["tokenize", "--checkpoint", checkpoint, "--input", "/nonexistent", "--out", "/tmp/x"]) == 2
    assert capsys.readouterr().err == "omnipipe: error: --input /nonexistent: folder not found\n"
    assert main(["reconstruct", "--checkpoint", checkpoint, "a.png", "--out", "/tmp/x", "--resolution", "18x16"]) == 2
    assert "must be positive multiples of the patch size 4" in capsys.readouterr().err


def test_skip_classes_names_the_labels_left_out() -> None:
    classes = ["cat", "digit-0", "digit-1", "dog", "digit-10"]
    assert skipped_labels(classes, ["digit-*"]).tolist() == [1, 2, 4]
    assert skipped_labels(classes, ["d*g", "cat"]).tolist() == [0, 3]
    assert skipped_labels(classes, []).tolist() == []
