"""A small real experiment for the training tests: shapes images and videos written to disk, prepared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omnipipe.data.prepare import prepare
from omnipipe.data.shapes import moving_shapes, write_shapes_folder
from omnipipe.plugins import get_registry
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import load_spec
from omnipipe.train.record import read_series

SPEC = """\
name: unit
seed: 5
outputs: {{dir: {root}/outputs}}
data:
  sources:
    - {{type: image_folder, root: {root}/images}}
    - {{type: video_folder, root: {root}/videos}}
  prepared_dir: {root}/prepared
  fps: 8
  clip_frames: 5
  clip_stride: 4
  resolutions: [[16, 16]]
  crop_margin: 0
  val_fraction: {val_fraction}
  split_unit: clip
model:
  patchifier: {{type: omni, patch_size: 4, temporal_patch_size: 4}}
  encoder: {{width: 32, num_heads: 2, spatial: [{{type: full}}], temporal: [{{type: causal}}]}}
  quantizer: {{type: vq, codebook_size: 64, code_dim: 4, decay: 0.9}}
  decoder: {{width: 32, num_heads: 2, spatial: [{{type: full}}], temporal: [{{type: causal}}]}}
train:
  losses:
{losses}
  discriminators: {{image: {{type: patchgan2d, channels: 8, layers: 2}}}}
  stages:
    image_pretrain:
      data: images
      steps: {steps}
      batch_size: {batch_size}
      optimizer: {{lr: {lr}}}
      schedule: {{name: constant}}
      checkpoint_every: {checkpoint_every}
      keep_last: 10
    joint:
      data: joint
      steps: 4
      batch_size: 2
      init_from: image_pretrain
      checkpoint_every: 2
"""
L1_ONLY = "    recon: {type: l1}"
COMPILED_LOSS_TOLERANCE = 5e-3  # compiled vs eager losses: float rounding, amplified by Adam (measured ≤ 0.13 %)
WITH_GAN = "    recon: {type: l1}\n    adversarial: {type: gan, weight: 0.1}"


def write_media(root: Path, images: int = 8, videos: int = 2) -> None:
    """Real PNGs (one moving-shapes frame each) and mp4s, under ``root/images`` and ``root/videos``."""
    for number in range(images):
        frame = moving_shapes(1, 16, 16, seed=number)[0]
        path = root / "images" / f"class_{number % 2}" / f"{number:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(frame)).save(path)
    write_shapes_folder(root / "videos", classes=1, per_class=videos, frames=48, height=16, width=16)


def make_experiment(
    root: Path,
    *,
    steps: int = 6,
    batch_size: int = 4,
    lr: float = 2e-3,
    checkpoint_every: int = 3,
    losses: str = L1_ONLY,
    registry: Registry | None = None,
    val_fraction: float = 0.0,
    extra: str = "",
) -> tuple[Path, Experiment]:
    """Write the spec file under ``root`` (media must exist), prepare its data, return (path, spec)."""
    registry = registry or get_registry()
    path = root / "spec.yaml"
    path.write_text(SPEC.format(root=root, steps=steps, batch_size=batch_size, lr=lr,
                                checkpoint_every=checkpoint_every, losses=losses, val_fraction=val_fraction) + extra)  # fmt: skip
    spec = load_spec(path, registry)
    if not (root / "prepared" / "index.json").exists():
        prepare(spec.data, registry, progress=False)
    return path, spec


def restart_codes_early(spec_path: Path) -> None:
    """Make the written spec's VQ restart unused codes from the first steps on (random draws inside the forward)."""
    spec_path.write_text(spec_path.read_text().replace("decay: 0.9}", "decay: 0.9, dead_code_threshold: 0.95}"))


def logged_series(live_dir: Path, metric: str) -> list[float]:
    """One logged metric per step from a stage's live log (after a resume, the last row of a step logged twice)."""
    return [float(value) for _, value in read_series(live_dir / "plots" / "metrics" / f"{metric}.tsv")]
