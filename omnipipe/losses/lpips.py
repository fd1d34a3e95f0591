"""LPIPS perceptual loss (``lpips``) with the torchvision backbone read from disk, never downloaded.

The ``lpips`` package ships its linear layers; the ImageNet backbone is torchvision's file in
torch's hub cache (``<torch.hub.get_dir()>/checkpoints/<file>``) or at ``backbone_path``.
Clips are compared frame by frame.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.errors import OmnipipeError
from omnipipe.nn.frames import fold_frames
from omnipipe.torch_files import TorchFileError, load_torch_file

if TYPE_CHECKING:
    import lpips

Net = Literal["vgg", "alex", "squeeze"]
log = logging.getLogger(__name__)


class BackboneWeightsError(OmnipipeError):
    """The torchvision ImageNet weights an LPIPS backbone needs are missing or do not fit."""


def backbone_file(net: Net) -> Path:
    """Where torch.hub keeps torchvision's ImageNet weights for ``net`` (TORCH_HOME is honoured)."""
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    weights = {"vgg": VGG16_Weights, "alex": AlexNet_Weights, "squeeze": SqueezeNet1_1_Weights}[net]
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def lpips_network(net: Net) -> lpips.LPIPS:
    """The lpips network: shipped linear layers, backbone randomly initialised with seed 0.

    The fixed seed makes every proxy (random-backbone) LPIPS the same function. ``pnet_rand``
    keeps torchvision from downloading anything.
    """
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)
        warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
        return lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)


def load_backbone(trunk: nn.Module, path: Path, net: Net) -> None:
    """Copy torchvision's ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` trunk."""
    try:
        state = load_torch_file(path, f"lpips '{net}' backbone")
    except TorchFileError as error:
        raise BackboneWeightsError(str(error)) from None
    try:
        renamed = {name: state[f"features.{name.split('.', 1)[1]}"] for name in trunk.state_dict()}
        trunk.load_state_dict(renamed)
    except (KeyError, RuntimeError) as error:
        problem = f"no tensor {error}" if isinstance(error, KeyError) else "tensor shapes differ"
        raise BackboneWeightsError(
            f"lpips: {path} is not torchvision's '{net}' ImageNet state dict ({problem})"
        ) from None


class LPIPSLoss(nn.Module):
    """LPIPS distance, mean over images (clips folded to frames); frozen and always in eval mode.

    ``is_proxy`` is true when the backbone is random (``allow_random_backbone`` with no weights
    file); ``name`` is then ``lpips_proxy`` so logged values cannot pass for real LPIPS.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        net: Net = "vgg"
        backbone_path: str | None = Field(
            default=None, description="torchvision weights file; default: torch hub's checkpoints folder"
        )
        allow_random_backbone: bool = Field(
            default=False, description="without the weights file, use a random backbone (logged as lpips_proxy)"
        )

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.params = params
        path = Path(params.backbone_path) if params.backbone_path else backbone_file(params.net)
        self.is_proxy = not path.is_file()
        if self.is_proxy and not params.allow_random_backbone:
            raise BackboneWeightsError(
                f"lpips: the '{params.net}' backbone needs torchvision's ImageNet weights file {path.name} "
                f"at {path} (copy it there, or set backbone_path; allow_random_backbone: true gives a proxy)"
            )
        self.name = "lpips_proxy" if self.is_proxy else "lpips"
        self.model = lpips_network(params.net)
        if self.is_proxy:
            log.warning("lpips: no backbone weights at %s; logging a random-backbone proxy as lpips_proxy", path)
        else:
            load_backbone(self.model.net, path, params.net)
        self.model.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> LPIPSLoss:
        """Stay in eval mode whatever ``mode`` is: LPIPS is a fixed metric (its dropout stays off)."""
        return super().train(False)

    def per_sample(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS of each sample (B,): the mean over its frames, for ``(B, C, T, H, W)`` inputs in [-1, 1]."""
        frames = self.model(fold_frames(reconstruction), fold_frames(target))  # (B·T, 1, 1, 1)
        return frames.view(target.shape[0], -1).mean(dim=1)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS over the B·T frames of ``(B, C, T, H, W)`` inputs in [-1, 1]."""
        return self.per_sample(reconstruction, target).mean()
