"""The adversarial objective (``gan``): generator and discriminator losses, and which critic judges a batch.

Gradient isolation (the reference implementation leaks the generator loss into its
discriminators):

- ``generator_loss`` runs the discriminator with its parameters frozen (``requires_grad`` off
  while the graph is recorded), so backpropagating the generator loss — now or later — never
  reaches the discriminator's ``.grad``; gradients still flow through it to the reconstruction.
- ``discriminator_loss`` detaches both inputs, so it never reaches the generator.
- ``Critics.update`` (``omnipipe.train.critics``) clears the discriminators' gradients first, so
  their update uses only their own loss.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

Stats = dict[str, torch.Tensor]


def hinge_discriminator(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """½ (E[relu(1 − D(x))] + E[relu(1 + D(x̂))])."""
    return 0.5 * (F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean())


def hinge_generator(logits_fake: torch.Tensor) -> torch.Tensor:
    """−E[D(x̂)]."""
    return -logits_fake.mean()


def non_saturating_discriminator(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """½ (E[softplus(−D(x))] + E[softplus(D(x̂))]): binary cross-entropy on logits."""
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


def non_saturating_generator(logits_fake: torch.Tensor) -> torch.Tensor:
    """E[softplus(−D(x̂))] = −E[log σ(D(x̂))]."""
    return F.softplus(-logits_fake).mean()


OBJECTIVES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "hinge": (hinge_discriminator, hinge_generator),
    "non_saturating": (non_saturating_discriminator, non_saturating_generator),
}


def adaptive_weight(
    recon_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float
) -> torch.Tensor:
    """VQGAN's balance: ‖∇_last recon_loss‖ / (‖∇_last gan_loss‖ + 1e-4), clamped to [0, max], detached."""
    (recon_grad,) = torch.autograd.grad(recon_loss, last_layer, retain_graph=True)
    (gan_grad,) = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)
    return (recon_grad.norm() / (gan_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Turn off ``requires_grad`` on ``module``'s parameters inside the block, then restore each flag."""
    flags = [(parameter, parameter.requires_grad) for parameter in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def critic_for(available: Collection[str], pixels: torch.Tensor) -> str:
    """The critic of a ``(B, C, T, H, W)`` batch: ``image`` for T = 1, ``video`` for clips; either stands in alone."""
    order = ("image", "video") if pixels.shape[2] == 1 else ("video", "image")
    for key in order:
        if key in available:
            return key
    raise KeyError("the gan loss needs an 'image' or 'video' discriminator (train.discriminators is empty)")


class GANLoss(nn.Module):
    """Adversarial loss against a discriminator (``forward(x, return_features=False)`` → logits).

    Not a plain ``forward(reconstruction, target)`` term: the trainer calls ``generator_loss``
    in the generator step and ``discriminator_loss`` in the discriminator step (``omnipipe.train.critics``).
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        objective: Literal["hinge", "non_saturating"] = "hinge"
        adaptive_weight: bool = Field(
            default=True, description="scale by ‖∇ recon‖ / ‖∇ gan‖ at the decoder's last layer (VQGAN)"
        )
        max_adaptive_weight: float = Field(default=1e4, gt=0)
        feature_matching_weight: float = Field(
            default=0.0, ge=0, description="L1 between discriminator features of reconstruction and target"
        )

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.params = params
        self.discriminator_objective, self.generator_objective = OBJECTIVES[params.objective]

    def generator_loss(
        self,
        reconstruction: torch.Tensor,
        target: torch.Tensor,
        discriminator: nn.Module,
        recon_loss: torch.Tensor | None = None,
        last_layer: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Stats]:
        """Adversarial (+ feature-matching) term for the generator; no gradient reaches ``discriminator``.

        With ``adaptive_weight`` and a ``last_layer`` (the decoder's final weight), the term is
        scaled by :func:`adaptive_weight` against ``recon_loss`` (the weighted reconstruction and
        perceptual terms); without ``last_layer`` it is left unscaled.
        """
        fm_weight = self.params.feature_matching_weight
        with frozen(discriminator):
            if fm_weight > 0:
                logits_fake, features_fake = discriminator(reconstruction, return_features=True)
                with torch.no_grad():
                    _, features_real = discriminator(target, return_features=True)
            else:
                logits_fake = discriminator(reconstruction)
        adversarial = self.generator_objective(logits_fake)
        stats: Stats = {"g_adversarial": adversarial.detach()}
        loss = adversarial
        if fm_weight > 0:
            matching = torch.stack([F.l1_loss(f, r) for f, r in zip(features_fake, features_real)]).mean()
            stats["feature_matching"] = matching.detach()
            loss = loss + fm_weight * matching
        if self.params.adaptive_weight and last_layer is not None:
            if recon_loss is None:
                raise ValueError("gan: an adaptive weight needs recon_loss alongside last_layer")
            weight = adaptive_weight(recon_loss, loss, last_layer, self.params.max_adaptive_weight)
            stats["adaptive_weight"] = weight
            loss = weight * loss
        return loss, stats

    def discriminator_loss(
        self, reconstruction: torch.Tensor, target: torch.Tensor, discriminator: nn.Module
    ) -> tuple[torch.Tensor, Stats]:
        """The discriminator's own loss on detached inputs (no gradient reaches the generator)."""
        logits_real = discriminator(target.detach())
        logits_fake = discriminator(reconstruction.detach())
        loss = self.discriminator_objective(logits_real, logits_fake)
        return loss, {
            "d_loss": loss.detach(),
            "logits_real": logits_real.detach().mean(),
            "logits_fake": logits_fake.detach().mean(),
        }
