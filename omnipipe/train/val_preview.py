"""What a tokenizer stage shows while it trains: reconstructions of fixed val batches, one per kind and resolution.

Scalars ``val_by_batch/<kind>_<H>x<W>/psnr`` (and ``…/lpips`` when LPIPS's weights are present), their
means ``val/psnr`` and ``val/lpips``, and a picture: per batch, a row of samples (each clip's frames side by side) and their reconstructions below.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from omnipipe.data.errors import DataError
from omnipipe.data.loader import STAGE_KINDS, Batch, make_loader
from omnipipe.evaluate.visuals import grid_picture, to_uint8
from omnipipe.losses.lpips import BackboneWeightsError, LPIPSLoss
from omnipipe.metrics.psnr import psnr
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec
from omnipipe.train.task import Evaluation

METRIC_SAMPLES = 8  # per kind and resolution
PICTURE_SAMPLES = 3
PICTURE_SCALE = 3
LPIPS_MIN_SIDE = 31  # AlexNet's smallest input (11×11/4 conv, two 3×3/2 max-pools): smaller frames get PSNR only


def batch_key(pixels: torch.Tensor) -> str:
    """``image_32x32`` / ``video_32x48`` for a ``(B, C, T, H, W)`` batch: the series a batch belongs to."""
    kind = "image" if pixels.shape[2] == 1 else "video"
    return f"{kind}_{pixels.shape[3]}x{pixels.shape[4]}"


def side_by_side(pictures: list[np.ndarray], gap: int) -> np.ndarray:
    """Same-height uint8 pictures ``(H, W, 3)`` left to right with white gaps: ``(H, W', 3)``."""
    spacer = np.full((pictures[0].shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([part for picture in pictures for part in (picture, spacer)][:-1], axis=1)


def samples_row(clips: torch.Tensor) -> np.ndarray:
    """A batch ``(B, C, T, H, W)`` as one row: each sample's frames side by side, samples further apart."""
    return side_by_side([side_by_side(list(to_uint8(clip)), gap=1) for clip in clips], gap=4)


def _val_loader(spec: Experiment, stage: StageSpec) -> Iterable[Batch]:
    for data in dict.fromkeys((stage.data, "images")):
        try:
            return make_loader(spec, stage.model_copy(update={"data": data}), "val")
        except DataError:
            continue
    return []


class ReconstructionPreview:
    """Fixed val batches (the first of each kind and resolution of the val split) and how to score them."""

    def __init__(self, batches: dict[str, torch.Tensor], lpips: LPIPSLoss | None) -> None:
        self.batches = batches
        self.lpips = lpips

    @classmethod
    def of_stage(cls, spec: Experiment, stage: StageSpec, device: torch.device) -> ReconstructionPreview:
        """The stage's preview: a joint stage whose val split has no clips previews its images; without a
        val split there are no batches (and nothing is scored)."""
        groups = len(STAGE_KINDS[stage.data]) * len(stage.resolutions or spec.data.resolutions)
        batches: dict[str, torch.Tensor] = {}
        for batch in _val_loader(spec, stage):
            batches.setdefault(batch_key(batch.pixels), batch.pixels[:METRIC_SAMPLES].to(device))
            if len(batches) == groups:
                break
        try:
            lpips: LPIPSLoss | None = LPIPSLoss(LPIPSLoss.Params(net="alex")).to(device)
        except BackboneWeightsError:
            lpips = None  # no weights here: PSNR only (never a proxy under LPIPS's name)
        return cls(batches, lpips)

    def __call__(self, model: nn.Module) -> Evaluation:
        """Scores and a picture of ``model`` (in eval mode, under ``no_grad``) on the fixed batches."""
        scalars: dict[str, float] = {}
        rows: list[np.ndarray] = []
        for key, target in self.batches.items():
            reconstruction = model(target).reconstruction.float()  # (B, C, T, H, W)
            scalars[f"val_by_batch/{key}/psnr"] = float(psnr(reconstruction, target).mean())
            if self.lpips is not None and min(target.shape[-2:]) >= LPIPS_MIN_SIDE:
                scalars[f"val_by_batch/{key}/lpips"] = float(self.lpips(reconstruction.clamp(-1, 1), target))
            rows += [samples_row(target[:PICTURE_SAMPLES]), samples_row(reconstruction[:PICTURE_SAMPLES])]
        for metric in ("psnr", "lpips"):
            values = [value for name, value in scalars.items() if name.endswith(f"/{metric}")]
            if values:
                scalars[f"val/{metric}"] = sum(values) / len(values)
        if not rows:
            return Evaluation(scalars)
        picture = grid_picture(rows).repeat(PICTURE_SCALE, axis=0).repeat(PICTURE_SCALE, axis=1)
        return Evaluation(scalars, {"reconstructions": picture})
