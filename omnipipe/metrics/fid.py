"""``fid``: reconstruction FID (rFID) — the Fréchet distance between Inception features of targets and reconstructions.

The network is pytorch-fid's ``InceptionV3`` (the TF FID Inception graph, 2048-d final-pool
features) with its weights file ``pt_inception-2015-12-05-6726825d.pth`` read from disk — torch
hub's checkpoints folder (``<torch.hub.get_dir()>/checkpoints/``, where pytorch-fid would download it)
or ``weights_path`` — and never downloaded. Every image, and every frame of a clip, counts as one image.
Pixels are quantised to 8 bits first (``quantize_8bit``) since FID is defined on images as saved.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.frechet import PairedFeatures
from omnipipe.nn.frames import fold_frames
from omnipipe.torch_files import TorchFileError, load_torch_file

log = logging.getLogger(__name__)

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def fid_weights_file() -> Path:
    """Where pytorch-fid's download would put the FID Inception weights (TORCH_HOME is honoured)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME


def missing_message(path: Path) -> str:
    return (
        f"fid: the FID Inception weights {FID_WEIGHTS_NAME} are missing at {path} "
        f"(copy the file there or set weights_path; allow_proxy: true gives fid_proxy)"
    )


def he_init(network: torch.nn.Module) -> None:
    """He-normal (fan-in, ReLU gain) weights for every conv and linear layer: activations keep their scale."""
    for module in network.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def build_inception(path: Path | None) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` for inputs in [-1, 1]; ``path`` None: random weights with seed 0.

    pytorch-fid fetches its state dict through ``load_state_dict_from_url``; that one call is
    redirected to the local file (``weights_only`` loading). For the proxy it hands back the
    freshly built network's own tensors after a variance-preserving random init (He-normal convs:
    PyTorch's default init shrinks the signal layer by layer until every image maps to ~the same
    features, and the proxy would always read 0). Nothing is fetched either way.
    """
    from pytorch_fid import inception as fid_inception

    built: list[torch.nn.Module] = []
    build_trunk = fid_inception._inception_v3

    def record_trunk(*args: Any, **kwargs: Any) -> torch.nn.Module:
        built.append(build_trunk(*args, **kwargs))
        return built[-1]

    def local_state(url: str, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        if path is None:
            he_init(built[-1])
            return {name: tensor.clone() for name, tensor in built[-1].state_dict().items()}
        return load_torch_file(path, "FID Inception weights")

    with torch.random.fork_rng(devices=[]), mock.patch.object(fid_inception, "_inception_v3", record_trunk), \
            mock.patch.object(fid_inception, "load_state_dict_from_url", local_state):  # fmt: skip
        torch.manual_seed(0)
        try:
            network = fid_inception.InceptionV3([3], resize_input=True, normalize_input=False)
        except (RuntimeError, KeyError, OSError, ValueError, TorchFileError) as error:  # a file that is not the FID state dict
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MetricUnavailable(f"fid: {path} is not pytorch-fid's Inception state dict ({first})") from None
    return network.eval().requires_grad_(False)


@functools.lru_cache(maxsize=4)
def shared_inception(path: str | None, device: str) -> torch.nn.Module:
    """One frozen network per (weights, device) in a process, shared by every ``fid`` instance."""
    return build_inception(Path(path) if path else None).to(torch.device(device))


class FID:
    """Fréchet Inception distance between target and reconstructed images/frames (lower is better)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        weights_path: str | None = Field(
            default=None, description=f"{FID_WEIGHTS_NAME}; default: torch hub's checkpoints folder"
        )
        quantize_8bit: bool = Field(default=True, description="round pixels to 8 bits first, as saved images are")
        frames_per_forward: int = Field(default=64, ge=1, description="images per Inception forward pass")

    per_sample_key = None

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.device = device or torch.device("cpu")
        path = Path(params.weights_path).expanduser() if params.weights_path else fid_weights_file()
        self.is_proxy = not path.is_file()
        if self.is_proxy and not allow_proxy:
            raise MetricUnavailable(missing_message(path))
        if self.is_proxy:
            log.warning("fid: no weights at %s; reporting a random-Inception proxy as fid_proxy", path)
        self.network = shared_inception(None if self.is_proxy else str(path), str(self.device))
        self.key = "fid_proxy" if self.is_proxy else "fid"
        self.pairs = PairedFeatures()

    @torch.no_grad()
    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Inception pool features (B·T, 2048) of ``(B, C, T, H, W)`` pixels in [-1, 1]."""
        x = pixels.to(self.device, torch.float32).clamp(-1, 1)
        if self.params.quantize_8bit:
            x = torch.round((x + 1) * 127.5) / 127.5 - 1
        frames = fold_frames(x)  # (B·T, C, H, W)
        if frames.shape[1] == 1:
            frames = frames.expand(-1, 3, -1, -1)
        chunks = [self.network(chunk)[0].flatten(1) for chunk in frames.split(self.params.frames_per_forward)]
        return torch.cat(chunks).double().cpu()

    def update(self, batch: EvalBatch) -> None:
        self.pairs.add(batch, self.features)

    def compute(self) -> dict[str, float]:
        """``{fid}`` (or ``{fid_proxy}``); NaN with fewer than 2 images."""
        if self.pairs.count < 2:
            log.warning("fid: %d image(s) seen; FID needs at least 2", self.pairs.count)
        return {self.key: self.pairs.distance()}
