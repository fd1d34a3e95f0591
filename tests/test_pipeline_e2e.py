"""The README's main job: `dvc repro` of the tiny pipeline, end to end, with fewer steps; then the extended
pipeline (`dvc repro pipelines/extended/dvc.yaml`) on top of it."""
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
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)  # minutes on an idle machine
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_dvc_repro_runs_the_tiny_pipeline(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work)
    shutil.copy(REPO / ".gitignore", work)
    shutil.copytree(REPO / "omnipipe", work / "omnipipe", ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((REPO / "pipelines" / "tiny.yaml").read_text())
    for stage in spec["train"]["stages"].values():
        stage["steps"], stage["checkpoint_every"] = 6, 3
    spec["evaluate"].update(max_samples=6, batch_size=4, bootstrap=20)  # a few val samples: FID runs Inception at 299² per frame
    for source in spec["data"]["sources"]:  # fewer digits: a smaller val split for every evaluation
        if source["type"] in ("digits", "moving_digits"):
            source["max_digits"] = 200 if source["type"] == "digits" else 40
    for generator in spec["generate"]["generators"].values():  # a few steps, samples and reference clips
        generator["train"].update(steps=4, checkpoint_every=2)
        generator["sample"].update(per_class=1, count=2)
        generator["evaluate"] = {"real_clips": 4}
    for entry in spec["vtok"].values():
        entry["train"].update(steps=4, checkpoint_every=2)
    spec["generate"]["evaluate"]["metrics"] = [{"type": "class_consistency"}, {"type": "gfid"}]
    (work / "pipelines" / "extended").mkdir(parents=True)
    shutil.copy(REPO / "pipelines" / "extended" / "dvc.yaml", work / "pipelines" / "extended")
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    shutil.copy(REPO / ".dvc" / "config", work / ".dvc" / "config")
    _run(["git", "add", "-A"], work)  # a clone has commits; dvclive fails in a repository without any
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "pipeline"], work)
    _run(["dvc", "repro"], work)
    assert not (work / "outputs/tiny/generators/ar").exists()  # the extended pipeline is opt-in
    _run(["dvc", "repro", "pipelines/extended/dvc.yaml"], work)
    metrics = json.loads((work / "outputs/tiny/evaluate/report.json").read_text())
    assert list(metrics["stages"]) == ["joint", "kl_finetune"]  # the VQ and the KL tokenizer in one report
    groups = metrics["samples"]
    assert {group.split("-")[0] for group in groups} == {"image", "clip"}
    for version in ("joint", "kl_finetune", "baseline_bicubic"):
        for group in groups:
            assert metrics[version][group]["psnr"] > 0
            if os.environ.get("OMNIPIPE_REQUIRE_WEIGHTS"):  # CI: the real networks, never "unavailable"
                assert {"lpips", "fid"} <= set(metrics[version][group]) and not metrics["unavailable"]
    for stage in ("image_pretrain", "joint", "kl_finetune"):
        assert (work / f"outputs/tiny/{stage}/model.safetensors").is_file()
        assert json.loads((work / f"outputs/tiny/{stage}/live/metrics.json").read_text())["step"] == 6
    for name, runs in (("ar", {"generate"}), ("masked", {"generate"}), ("ar_video", {"generate", "predict-1"}),
                       ("ldm", {"generate", "generate-euler-100"})):
        generated = json.loads((work / f"outputs/tiny/generators/{name}/evaluate/metrics.json").read_text())
        assert set(generated["runs"]) == runs and generated["runs"]["generate"]["samples"] == 10
        assert 0 <= generated["runs"]["generate"]["generator"]["class_consistency"] <= 1
        assert (work / f"outputs/tiny/generators/{name}/pictures/generate.png").is_file()
    assert (work / "outputs/tiny/generators/ar_video/videos/predict-1").is_dir()
    ldm = json.loads((work / "outputs/tiny/generators/ldm/evaluate/metrics.json").read_text())["runs"]
    assert "baseline_independent" in ldm["generate"] and ldm["generate-euler-100"]["settings"]["steps"] == 100
    assert "Data and pipelines are up to date." in _run(["dvc", "status"], work)
    original = (work / "pipelines" / "tiny.yaml").read_text()
    spec["train"]["stages"]["kl_finetune"]["steps"] = 3
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    spec["generate"]["generators"]["masked"]["sample"]["settings"]["cfg_scale"] = 2.0
    (work / "pipelines" / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    status = _run(["dvc", "status"], work)
    assert "kl_finetune" in status and "joint:" not in status and "image_pretrain" not in status
    assert "sample_masked:" in status and "train_masked:" not in status and "sample_ar:" not in status
    (work / "pipelines" / "tiny.yaml").write_text(original)

    # An experiment is recorded with its metrics, next to the committed run, and DVC compares them.
    _run(["git", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "tiny run"], work)
    tracked = _run(["git", "ls-files", "outputs"], work).split()
    assert "outputs/tiny/kl_finetune/metrics.json" in tracked and "outputs/tiny/joint/plots/images/reconstructions.png" in tracked
    assert not [path for path in tracked if "checkpoints" in path or path.endswith(".safetensors") or "/live/" in path]
    _run(["dvc", "exp", "run", "-n", "short-kl", "-S", "pipelines/tiny.yaml:train.stages.kl_finetune.steps=3"], work)
    rows = {row["name"]: row for row in experiment_rows(json.loads(_run(["dvc", "exp", "show", "--json"], work)))}
    committed, experiment = rows["master"], rows["short-kl"]
    assert committed["outputs/tiny/kl_finetune/metrics.json"]["step"] == 6
    assert experiment["outputs/tiny/kl_finetune/metrics.json"]["step"] == 3
    for stage in ("image_pretrain", "joint"):  # not rerun: the experiment carries the same numbers
        assert experiment[f"outputs/tiny/{stage}/metrics.json"] == committed[f"outputs/tiny/{stage}/metrics.json"]
    assert set(committed["outputs/tiny/joint/metrics.json"]) >= {"step", "train_loss", "val_psnr", "codebook_usage"}
    diff = json.loads(_run(["dvc", "metrics", "diff", "HEAD", "--json"], work))
    assert diff["outputs/tiny/kl_finetune/metrics.json"]["step"] == {"old": 6, "new": 3, "diff": -3}
    _run(["dvc", "plots", "diff", "HEAD", "-o", "compared"], work)
    page = (work / "compared" / "index.html").read_text()
    assert "<script src" not in page  # nothing loaded from the network
    assert "window.vegaEmbed=" in page and "vegaEmbed('#" in page and "reconstructions.png" in page


def experiment_rows(shown: list[dict]) -> list[dict]:
    """``dvc exp show --json`` flattened: one dict per commit or experiment, ``name`` and metrics by file."""
    rows = []
    for commit in shown:
        runs = [commit] + [rev for experiment in commit.get("experiments") or [] for rev in experiment["revs"]]
        for run in runs:
            metrics = (run.get("data") or {}).get("metrics") or {}
            rows.append({"name": run.get("name") or run["rev"],
                         **{path: value.get("data", {}) for path, value in metrics.items()}})  # fmt: skip
    return rows
