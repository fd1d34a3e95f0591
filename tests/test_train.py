"""Training: it learns, resumes exactly, survives SIGKILL, stops on NaN, and keeps GAN updates apart."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file

from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry, load_registry
from omnipipe.spec.loader import load_spec
from omnipipe.train.checkpoint import CheckpointStore
from omnipipe.train.paths import StagePaths
from omnipipe.train.loop import TrainingError
from omnipipe.train.tokenizer_task import stage_model_spec
from omnipipe.train.trainer import train_stage
from omnipipe.train.val_preview import ReconstructionPreview
from omnipipe.data.loader import make_loader
from training_setup import WITH_GAN, make_experiment, restart_codes_early, write_media


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    write_media(root)
    return root


@pytest.fixture
def root(media: Path, tmp_path: Path) -> Path:
    """A fresh experiment folder with its own copy of the media."""
    for name in ("images", "videos"):
        shutil.copytree(media / name, tmp_path / name)
    return tmp_path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_overfitting_one_batch_lowers_the_reconstruction_loss_fourfold(root: Path) -> None:
    _, spec = make_experiment(root, steps=80, batch_size=8, lr=3e-3, checkpoint_every=80)
    stage = spec.train.stages["image_pretrain"]
    batch = next(iter(make_loader(spec, stage))).pixels  # all 8 images: every step sees this batch
    torch.manual_seed(spec.seed)
    fresh = Tokenizer.from_spec(stage_model_spec(spec, stage), get_registry()).eval()
    paths = train_stage(spec, "image_pretrain", get_registry())
    trained = Tokenizer.from_checkpoint(paths.model_file)
    with torch.no_grad():
        before = (fresh(batch).reconstruction - batch).abs().mean().item()
        after = (trained(batch).reconstruction - batch).abs().mean().item()
    assert after < before / 4, (before, after)  # measured: about 0.55 → 0.07


def test_resume_equals_uninterrupted(root: Path) -> None:
    _, spec = make_experiment(root, steps=6, checkpoint_every=3, losses=WITH_GAN)
    paths = train_stage(spec, "image_pretrain", get_registry())
    straight = _weights(paths.model_file)
    store = CheckpointStore(paths.checkpoints, keep_last=10)
    assert store.steps() == [3, 6]
    shutil.rmtree(store.path(6))  # as if the run had stopped right after step 3
    paths.model_file.unlink()
    train_stage(spec, "image_pretrain", get_registry(), resume=True)
    resumed = _weights(paths.model_file)
    assert straight.keys() == resumed.keys()
    for name in straight:  # exact: same data, RNG streams, optimizer and discriminator state
        assert torch.equal(straight[name], resumed[name]), name


def test_resume_starts_over_on_a_checkpoint_of_another_configuration(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, spec = make_experiment(root, steps=3, checkpoint_every=3)
    paths = train_stage(spec, "image_pretrain", get_registry())
    first = _weights(paths.model_file)
    _, changed = make_experiment(root, steps=3, checkpoint_every=3, lr=1e-3)
    train_stage(changed, "image_pretrain", get_registry(), resume=True)
    assert "step-000003: written with other settings, code or inputs of stage 'image_pretrain'; starting over" in capsys.readouterr().out
    assert not torch.equal(first["encoder.norm.weight"], _weights(paths.model_file)["encoder.norm.weight"])


KL_STAGE = """\
    kl_finetune:
      data: joint
      steps: 2
      batch_size: 2
      init_from: joint
      quantizer: {type: kl, latent_channels: 4}
      checkpoint_every: 2
"""


def test_a_changed_upstream_model_restarts_a_later_stage_that_swaps_the_quantizer(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #11's experiment: a new codebook size retrains image_pretrain and joint; kl_finetune (whose own
    model hides the VQ behind its KL swap) must start over from the new joint, not resume the old run."""
    spec_path, spec = make_experiment(root, steps=2, checkpoint_every=2, extra=KL_STAGE)
    for stage in ("image_pretrain", "joint", "kl_finetune"):
        train_stage(spec, stage, get_registry(), resume=True)
    old = _weights(StagePaths.of(spec, "kl_finetune").model_file)
    spec_path.write_text(spec_path.read_text().replace("codebook_size: 64", "codebook_size: 32"))
    changed = load_spec(spec_path, get_registry())
    for stage in ("image_pretrain", "joint"):
        train_stage(changed, stage, get_registry(), resume=True)
    capsys.readouterr()
    train_stage(changed, "kl_finetune", get_registry(), resume=True)
    out = capsys.readouterr().out
    assert "step-000002: written with other settings, code or inputs of stage 'kl_finetune'; starting over" in out
    assert "resuming" not in out
    new = _weights(StagePaths.of(spec, "kl_finetune").model_file)
    assert not torch.equal(old["encoder.norm.weight"], new["encoder.norm.weight"])


def test_sigkill_mid_training_resumes_from_a_loadable_checkpoint(root: Path) -> None:
    spec_path, spec = make_experiment(root, steps=300, checkpoint_every=4)
    paths = StagePaths.of(spec, "image_pretrain")
    store = CheckpointStore(paths.checkpoints, keep_last=10)
    command = [sys.executable, "-m", "omnipipe.cli", "train", "--spec", str(spec_path), "--stage", "image_pretrain", "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(store.steps()) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = store.steps()
    assert killed_at and killed_at[-1] < 300, killed_at
    model = Tokenizer.from_spec(stage_model_spec(spec, spec.train.stages["image_pretrain"]), get_registry())
    state = store.load(store.latest(), {"model": model, "discriminators": torch.nn.ModuleDict()})
    assert state["step"] == killed_at[-1]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming stage 'image_pretrain' at step {killed_at[-1]}" in result.stdout
    assert store.steps()[-1] == 300 and paths.model_file.is_file()


def test_sigterm_stops_with_a_resume_hint(root: Path) -> None:
    spec_path, spec = make_experiment(root, steps=300, checkpoint_every=2)
    store = CheckpointStore(StagePaths.of(spec, "image_pretrain").checkpoints, keep_last=10)
    command = [sys.executable, "-m", "omnipipe.cli", "train", "--spec", str(spec_path), "--stage", "image_pretrain"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not store.steps() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert f"stage 'image_pretrain' interrupted; {store.root}" in stderr
    assert "is kept: run again with --resume to continue" in stderr


class NaNAfter(torch.nn.Module):
    """A loss that turns non-finite at a given step (to test the trainer's guard)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        calls: int = 4

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.calls_left = params.calls

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls_left -= 1
        value = (reconstruction - target).abs().mean()
        return value if self.calls_left >= 0 else value * float("nan")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(root: Path) -> None:
    registry = load_registry()
    registry.add("loss", "nan_after", NaNAfter)
    _, spec = make_experiment(root, steps=10, checkpoint_every=2, losses="    recon: {type: nan_after, calls: 5}", registry=registry)
    with pytest.raises(TrainingError) as caught:
        train_stage(spec, "image_pretrain", registry)
    message = str(caught.value)
    assert message.startswith("stage 'image_pretrain' step 5: non-finite loss (recon=nan")
    assert message.endswith("last good checkpoint: " + str(StagePaths.of(spec, "image_pretrain").checkpoints / "step-000004"))
    store = CheckpointStore(StagePaths.of(spec, "image_pretrain").checkpoints, keep_last=10)
    model = Tokenizer.from_spec(spec.model, registry)
    assert store.load(store.latest(), {"model": model, "discriminators": torch.nn.ModuleDict()})["step"] == 4


def test_joint_stage_starts_from_image_stage_with_inflated_temporal_patches(root: Path) -> None:
    _, spec = make_experiment(root, steps=2, checkpoint_every=2)
    image_paths = train_stage(spec, "image_pretrain", get_registry())
    image_model = Tokenizer.from_checkpoint(image_paths.model_file)
    still = torch.rand(1, 3, 1, 16, 16) * 2 - 1
    clip = still.expand(1, 3, 5, 16, 16)  # a static clip
    joint_spec = spec.train.stages["joint"]
    model = Tokenizer.from_spec(stage_model_spec(spec, joint_spec), get_registry())
    from omnipipe.train.initialise import initialise_from

    initialise_from(model, image_paths.model_file, inflate_temporal=True, keep_quantizer=True)
    with torch.no_grad():
        tokens = model.patchifier(clip)  # (1, 2, 4, 4, D)
        expected = image_model.patchifier(still)
    assert torch.allclose(tokens[:, 1], expected[:, 0], atol=1e-6)  # a static tube embeds like its frame
    train_stage(spec, "joint", get_registry())
    assert StagePaths.of(spec, "joint").model_file.is_file()


def _ddp_spec(root: Path, media: Path, batch_size: int) -> Path:
    for name in ("images", "videos"):
        shutil.copytree(media / name, root / name)
    path, _ = make_experiment(root, steps=4, batch_size=batch_size, checkpoint_every=4)
    return path


def test_two_process_ddp_matches_one_process_with_the_doubled_batch(media: Path, tmp_path: Path) -> None:
    single = _ddp_spec(tmp_path / "single", media, batch_size=4)
    double = _ddp_spec(tmp_path / "ddp", media, batch_size=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = ["-m", "omnipipe.cli", "train", "--stage", "image_pretrain", "--spec"]
    one = subprocess.run([sys.executable, *train, str(single)], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run([*launch, *train, str(double)], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "replicas identical across 2 ranks (weights and codebook)" in two.stdout
    a = _weights(tmp_path / "single/outputs/unit/image_pretrain/model.safetensors")
    b = _weights(tmp_path / "ddp/outputs/unit/image_pretrain/model.safetensors")
    assert a.keys() == b.keys()
    for name in a:  # gradients averaged over ranks = the doubled batch's mean, up to float summation order
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5), (name, (a[name] - b[name]).abs().max())


def test_ddp_dead_code_restarts_keep_codebooks_identical(media: Path, tmp_path: Path) -> None:
    path = _ddp_spec(tmp_path, media, batch_size=2)
    restart_codes_early(path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = subprocess.run([*launch, "-m", "omnipipe.cli", "train", "--stage", "image_pretrain", "--spec", str(path)],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "replicas identical across 2 ranks (weights and codebook)" in run.stdout
    restarted = (tmp_path / "outputs/unit/image_pretrain/live/plots/metrics/codebook/restarted.tsv").read_text()
    assert sum(float(line.split("\t")[1]) for line in restarted.splitlines()[1:]) > 0  # restarts did happen


def test_a_joint_stage_logs_series_per_batch_kind_val_reconstructions_and_a_record(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, spec = make_experiment(root, steps=2, checkpoint_every=2, val_fraction=0.5)  # val: images and clips
    train_stage(spec, "image_pretrain", get_registry())
    spec.train.stages["joint"].eval_every = 2
    paths = train_stage(spec, "joint", get_registry())
    plots = paths.out_dir / "plots" / "metrics"

    def series(name: str) -> dict[int, float]:
        return {int(s): float(v) for s, v in (line.split("\t") for line in (plots / f"{name}.tsv").read_text().splitlines()[1:])}

    total, images, videos = series("loss/total"), series("loss_by_batch/image_16x16"), series("loss_by_batch/video_16x16")
    assert sorted(images | videos) == [1, 2, 3, 4] and not images.keys() & videos.keys()  # one kind per step
    assert all(total[step] == pytest.approx((images | videos)[step], rel=1e-6) for step in total)

    stage = spec.train.stages["joint"]
    model = Tokenizer.from_checkpoint(paths.model_file)  # no EMA: the model of step 4
    fixed = {}
    for batch in make_loader(spec, stage, "val"):
        kind = "image" if batch.pixels.shape[2] == 1 else "video"
        fixed.setdefault(kind, batch.pixels[:8])
    assert sorted(fixed) == ["image", "video"]
    with torch.no_grad():
        for kind, target in fixed.items():
            recon = model(target).reconstruction.clamp(-1, 1)
            mse = ((recon - target) / 2).double().square().flatten(1).mean(1)  # pixels in [0, 1]
            expected = float((10 * torch.log10(1 / mse)).mean())
            assert series(f"val_by_batch/{kind}_16x16/psnr")[4] == pytest.approx(expected, abs=1e-4)
    assert sorted(series("val/psnr")) == [2, 4]

    picture = np.asarray(Image.open(paths.out_dir / "plots" / "images" / "reconstructions.png"))
    first = ((fixed["image"][0, :, 0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()  # (H, W, 3)
    assert np.array_equal(picture[:48, :48], first.repeat(3, axis=0).repeat(3, axis=1))  # enlarged 3×, top left

    record = json.loads((paths.out_dir / "metrics.json").read_text())
    assert record["step"] == 4 and record["train_loss"] == pytest.approx(sum(total.values()) / 4)
    assert record["val_psnr"] == pytest.approx(series("val/psnr")[4]) and 0 < record["codebook_usage"] <= 1
    assert "time" not in {path.name for path in plots.iterdir()}  # wall-clock series stay in the live log
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(rf"stage 'joint' done at step 4 in 0m\d\d\.\ds: loss/recon \S+, loss/quantizer_commitment \S+, "
                        rf"loss/total \S+, val/psnr \S+, codebook/usage \S+, codebook/perplexity \S+; "
                        rf"plots: {re.escape(str(paths.out_dir / 'plots'))}; output: {re.escape(str(paths.model_file))}", line)  # fmt: skip


def test_the_val_preview_of_a_joint_stage_without_val_clips_shows_its_images(root: Path) -> None:
    _, spec = make_experiment(root, val_fraction=0.3)  # this split has val images but no val clips
    preview = ReconstructionPreview.of_stage(spec, spec.train.stages["joint"], torch.device("cpu"))
    assert list(preview.batches) == ["image_16x16"]
    other = root / "no-val"
    for name in ("images", "videos"):
        shutil.copytree(root / name, other / name)
    _, spec = make_experiment(other, val_fraction=0.0)
    empty = ReconstructionPreview.of_stage(spec, spec.train.stages["joint"], torch.device("cpu"))
    assert empty.batches == {} and empty(torch.nn.Identity()).scalars == {}


CRITICS = ("image: {type: patchgan2d, channels: 8, layers: 2, weight: 2.0, on_clips: one_frame}, "
           "video: {type: patchgan3d, channels: 8, layers: 2}")
JOINT_CRITICS = """\
      discriminator_weights: {image: 0.5}
      discriminator_optimizer: {lr_multiplier: 0.1, warmup_steps: 3, grad_clip: 1.0, skip_below: 0.0}
"""


def test_a_joint_stage_with_the_references_critic_settings_logs_them_and_resumes_exactly(root: Path) -> None:
    spec_path, _ = make_experiment(root, steps=2, checkpoint_every=2, losses=WITH_GAN, extra=JOINT_CRITICS)
    spec_path.write_text(spec_path.read_text().replace("image: {type: patchgan2d, channels: 8, layers: 2}", CRITICS))
    spec = load_spec(spec_path, get_registry())
    train_stage(spec, "image_pretrain", get_registry())
    paths = train_stage(spec, "joint", get_registry())
    straight = _weights(paths.model_file)
    plots = paths.out_dir / "plots" / "metrics"
    frames = (plots / "adversarial" / "image_frames" / "g_adversarial.tsv").read_text().splitlines()[1:]
    assert len(frames) == 2  # the two clip steps of four: the image critic on one frame per clip
    assert (plots / "adversarial" / "d_grad_norm.tsv").exists() and (plots / "adversarial" / "d_skipped.tsv").exists()

    store = CheckpointStore(paths.checkpoints, keep_last=10)
    state = store.state(store.path(4), verified=True)
    assert state["d_scheduler"]["last_epoch"] == 4
    # joint: lr 1e-4 (default), cosine to 0.1 (default); the critics: · 0.1, 3 warm-up steps, so at the floor after 4
    assert state["d_optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.1 * 1e-4 * 0.1)
    shutil.rmtree(store.path(4))
    paths.model_file.unlink()
    train_stage(spec, "joint", get_registry(), resume=True)
    resumed = _weights(paths.model_file)
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)  # critics and their schedule resumed
