"""``gfid`` and ``gfvd``: Fréchet distances between features of generated and real val clips (lower is better).

gFID uses the FID Inception of ``omnipipe.metrics.fid`` (every image and every frame of a clip is one
image); gFVD the Kinetics-400 I3D of ``omnipipe.metrics.fvd`` (clips only). The real statistics are
those of the val split; both are defined on samples and reference sets of the sizes stated next to
them in ``metrics.json``, so compare numbers only at equal counts. Features go through the on-disk
cache of ``omnipipe.metrics.feature_cache``: generators that share a token dataset share its real
clips (and the independent-token baseline's samples), which are then run through the network once.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import torch
from pydantic import Field

from omnipipe.generate.metrics.base import GenerationMetric
from omnipipe.metrics.feature_cache import cached_features
from omnipipe.metrics.fid import FID
from omnipipe.metrics.frechet import GaussianStats, frechet_distance_of
from omnipipe.metrics.fvd import FVD


class FeatureNetwork(Protocol):
    """What the metrics need of ``FID`` / ``FVD``: the features, whether the weights are random, and an identity
    (description with the weights and their hash, and device) for the feature cache."""

    description: str
    device: torch.device
    is_proxy: bool

    def features(self, pixels: torch.Tensor) -> torch.Tensor: ...


class _FrechetMetric(GenerationMetric):
    """Running feature statistics of the real clips and of each generated version."""

    key: str

    def __init__(self, network: FeatureNetwork) -> None:
        self.features = cached_features(f"{self.key}: {network.description} on {network.device}", network.features)
        self.name = f"{self.key}_proxy" if network.is_proxy else self.key
        self.real = GaussianStats()
        self.generated: dict[str, GaussianStats] = defaultdict(GaussianStats)

    def _wanted(self, pixels: torch.Tensor) -> bool:
        """Whether this metric judges batches of this kind (images or clips)."""
        raise NotImplementedError

    def update_real(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        if self._wanted(pixels):
            self.real.add(self.features(pixels))

    def update_generated(self, version: str, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        if self._wanted(pixels):
            self.generated[version].add(self.features(pixels))

    def compute(self) -> dict[str, dict[str, float]]:
        if self.real.count == 0:
            return {}
        return {version: {self.name: frechet_distance_of(self.real, stats)} for version, stats in self.generated.items()}


class GenerationFID(_FrechetMetric):
    """gFID: Fréchet Inception distance of generated images (and frames) to the real val split (lower is better)."""

    key = "gfid"

    class Params(FID.Params):
        frames_of_clips: bool = Field(default=False, description="also judge clips, every frame an image (costly)")

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        network = FID(FID.Params(**params.model_dump(exclude={"frames_of_clips"})), allow_proxy, device)
        self.images_only = not params.frames_of_clips
        super().__init__(network)

    def _wanted(self, pixels: torch.Tensor) -> bool:
        return pixels.shape[2] == 1 or not self.images_only


class GenerationFVD(_FrechetMetric):
    """gFVD: Fréchet video distance (I3D) of generated clips to the real val clips (lower is better)."""

    key = "gfvd"

    def _wanted(self, pixels: torch.Tensor) -> bool:
        return pixels.shape[2] > 1

    class Params(FVD.Params):
        pass

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        network = FVD(FVD.Params(**params.model_dump()), allow_proxy, device)
        super().__init__(network)
