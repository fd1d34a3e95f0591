"""The README's main job: `dvc repro` of the tiny pipeline, end to end, with fewer steps."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_dvc_repro_runs_the_tiny_pipeline(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work)
    shutil.copytree(REPO / "omnipipe", work / "omnipipe", ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((REPO / "pipelines" / "tiny.yaml").read_text())
    for stage in spec["train"]["stages"].values():
        stage["steps"], stage["checkpoint_every"] = 6, 3
    for source in spec["data"]["sources"]:  # fewer digits: a smaller val split for every evaluation
        if source["type"] in ("digits", "moving_digits"):
            source["max_digits"] = 200 if source["type"] == "digits" else 40
    for generator in spec["generate"]["generators"].values():  # a few steps, samples and reference clips
        generator["train"].update(steps=4, checkpoint_every=2)
        generator["sample"].update(per_class=1, count=2)
        generator["evaluate"] = {"real_clips": 4}
    spec["generate"]["evaluate"]["metrics"] = [{"type": "class_consistency"}, {"type": "gfid"}]
    (work / "pipelines").mkdir()
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["git", "add", "-A"], work)  # a clone has commits; dvclive fails in a repository without any
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "pipeline"], work)
    _run(["dvc", "repro"], work)
    metrics = json.loads((work / "outputs/tiny/evaluate/metrics.json").read_text())
    assert metrics["stage"] == "joint" and metrics["samples"]["image"] > 0 and metrics["samples"]["clip"] > 0
    assert metrics["tokenizer"]["clip"]["psnr"] > 0
    for stage in ("image_pretrain", "joint", "kl_finetune"):
        assert (work / f"outputs/tiny/{stage}/model.safetensors").is_file()
        assert json.loads((work / f"outputs/tiny/{stage}/live/metrics.json").read_text())["step"] == 6
    for name, runs in (("ar", {"generate"}), ("masked", {"generate"}), ("ar_video", {"generate", "predict-1"})):
        generated = json.loads((work / f"outputs/tiny/generators/{name}/evaluate/metrics.json").read_text())
        assert set(generated["runs"]) == runs and generated["runs"]["generate"]["samples"] == 10
        assert 0 <= generated["runs"]["generate"]["generator"]["class_consistency"] <= 1
        assert (work / f"outputs/tiny/generators/{name}/pictures/generate.png").is_file()
    assert (work / "outputs/tiny/generators/ar_video/videos/predict-1").is_dir()
    assert "Data and pipelines are up to date." in _run(["dvc", "status"], work)
    spec["train"]["stages"]["kl_finetune"]["steps"] = 3
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    spec["generate"]["generators"]["masked"]["sample"]["settings"]["cfg_scale"] = 2.0
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    status = _run(["dvc", "status"], work)
    assert "kl_finetune" in status and "joint:" not in status and "image_pretrain" not in status
    assert "sample_masked:" in status and "train_masked:" not in status and "sample_ar:" not in status
