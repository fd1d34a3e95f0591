"""Registration of the perceptual and adversarial losses and the discriminators."""
from __future__ import annotations

from omnipipe.losses.gan import GANLoss
from omnipipe.losses.lpips import LPIPSLoss
from omnipipe.nn.discriminators.patchgan2d import PatchGAN2d
from omnipipe.nn.discriminators.patchgan3d import PatchGAN3d
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    registry.add("loss", "lpips", LPIPSLoss)
    registry.add("loss", "gan", GANLoss)
    registry.add("discriminator", "patchgan2d", PatchGAN2d)
    registry.add("discriminator", "patchgan3d", PatchGAN3d)
