"""The adversarial objective: closed-form values, the adaptive weight, and gradient isolation."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from omnipipe.losses.gan import GANLoss
from omnipipe.nn.discriminators.patchgan2d import PatchGAN2d
from omnipipe.nn.discriminators.patchgan3d import PatchGAN3d
from omnipipe.spec.train import DiscriminatorOptimizerSpec
from omnipipe.train.critics import Critics


class ConstantCritic(nn.Module):
    """Returns fixed logits for the target (all zero pixels) and for anything else."""

    def __init__(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        super().__init__()
        self.real, self.fake = real, fake

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.real if bool((x == 0).all()) else self.fake


REAL = torch.tensor([2.0, 0.5, -1.0])
FAKE = torch.tensor([-2.0, 0.0, 3.0])
TARGET, RECON = torch.zeros(1, 3, 1, 4, 4), torch.ones(1, 3, 1, 4, 4)


def _gan(objective: str, **params: object) -> GANLoss:
    return GANLoss(GANLoss.Params(objective=objective, adaptive_weight=False, **params))


def test_hinge_closed_form() -> None:
    gan, critic = _gan("hinge"), ConstantCritic(REAL, FAKE)
    d_loss, stats = gan.discriminator_loss(RECON, TARGET, critic)
    # relu(1 - real) = [0, .5, 2] → 5/6; relu(1 + fake) = [0, 1, 4] → 5/3
    assert d_loss.item() == pytest.approx(0.5 * (5 / 6 + 5 / 3))
    assert stats["logits_real"].item() == pytest.approx(0.5) and stats["logits_fake"].item() == pytest.approx(1 / 3)
    g_loss, _ = gan.generator_loss(RECON, TARGET, critic)
    assert g_loss.item() == pytest.approx(-1 / 3)


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_non_saturating_closed_form() -> None:
    gan, critic = _gan("non_saturating"), ConstantCritic(REAL, FAKE)
    real_term = sum(softplus(-v) for v in REAL.tolist()) / 3  # −log σ(D(x))
    fake_term = sum(softplus(v) for v in FAKE.tolist()) / 3  # −log(1 − σ(D(x̂)))
    d_loss, _ = gan.discriminator_loss(RECON, TARGET, critic)
    assert d_loss.item() == pytest.approx(0.5 * (real_term + fake_term))
    g_loss, _ = gan.generator_loss(RECON, TARGET, critic)
    assert g_loss.item() == pytest.approx(sum(softplus(-v) for v in FAKE.tolist()) / 3)


def test_adaptive_weight_matches_hand_formula() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 4, 1, 3, 3)  # latent
    target = torch.randn(2, 3, 1, 3, 3)
    decoder = nn.Conv3d(4, 3, 1, bias=False)  # a linear decoder: x = W z per pixel
    critic = nn.Conv3d(3, 1, 1, bias=False)  # a linear critic: D(x) = a · x per pixel
    recon = decoder(z)
    recon_loss = (recon - target).square().mean()
    gan = GANLoss(GANLoss.Params(objective="hinge", max_adaptive_weight=1e4))
    loss, stats = gan.generator_loss(recon, target, critic, recon_loss=recon_loss, last_layer=decoder.weight)

    # by hand, with z_p, x_p, t_p the per-pixel vectors and P pixels (N = 3 P elements):
    W, a = decoder.weight.detach()[:, :, 0, 0, 0], critic.weight.detach()[0, :, 0, 0, 0]
    zp, xp, tp = (v.detach().permute(0, 2, 3, 4, 1).reshape(-1, v.shape[1]) for v in (z, recon, target))
    grad_recon = 2 / xp.numel() * (xp - tp).T @ zp  # ∇_W mean((W z − t)²)
    grad_gan = -torch.outer(a, zp.mean(0))  # ∇_W −mean(a · W z)
    expected = grad_recon.norm() / (grad_gan.norm() + 1e-4)
    assert torch.allclose(stats["adaptive_weight"], expected)
    assert torch.allclose(loss, expected * -critic(recon).mean())
    assert torch.allclose(W, decoder.weight[:, :, 0, 0, 0])  # the weight is detached: nothing changed


def test_adaptive_weight_is_clamped() -> None:
    decoder = nn.Linear(2, 2, bias=False)
    recon = decoder(torch.ones(1, 2)).reshape(1, 2, 1, 1, 1)
    gan = GANLoss(GANLoss.Params(max_adaptive_weight=0.5))
    critic = nn.Conv3d(2, 1, 1, bias=False)
    _, stats = gan.generator_loss(recon, recon.detach() + 1, critic, recon_loss=1e6 * recon.sum(), last_layer=decoder.weight)
    assert stats["adaptive_weight"].item() == 0.5


def _setup(cls: type, fm: float) -> tuple[nn.Module, nn.Module, GANLoss, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    disc = cls(cls.Params(channels=4, layers=2))
    generator = nn.Conv3d(3, 3, 1)
    target = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    gan = GANLoss(GANLoss.Params(feature_matching_weight=fm))
    return disc, generator, gan, generator(target), target


@pytest.mark.parametrize("cls", [PatchGAN2d, PatchGAN3d])
def test_discriminator_step_uses_only_its_own_loss(cls: type) -> None:
    disc, generator, gan, recon, target = _setup(cls, fm=1.0)
    own, _ = gan.discriminator_loss(recon, target, disc)
    reference = torch.autograd.grad(own, list(disc.parameters()))

    # the generator step runs first, as in training, leaving its gradients wherever they go
    g_loss, _ = gan.generator_loss(recon, target, disc, recon_loss=recon.abs().mean(), last_layer=generator.weight)
    g_loss.backward(retain_graph=True)
    for p in disc.parameters():  # and a stale gradient from elsewhere must not survive either
        p.grad = torch.ones_like(p)
    generator_grads = [p.grad.clone() for p in generator.parameters()]

    before = [p.detach().clone() for p in disc.parameters()]
    optimizer = torch.optim.SGD(disc.parameters(), lr=0.1)
    key = "image" if cls is PatchGAN2d else "video"  # either critic alone judges the clips
    critics = Critics(nn.ModuleDict({key: disc}), {key: 1.0}, None, optimizer, DiscriminatorOptimizerSpec())
    stats = critics.update(gan, recon, target, step=0)
    for p, expected, old in zip(disc.parameters(), reference, before):
        assert torch.equal(p.grad, expected)
        assert torch.allclose(p, old - 0.1 * expected)  # the step used these gradients
    assert all(torch.equal(p.grad, g) for p, g in zip(generator.parameters(), generator_grads))
    assert stats["d_loss"].item() == pytest.approx(own.item())


@pytest.mark.parametrize("fm", [0.0, 1.0])
def test_generator_step_leaves_discriminator_grads_untouched(fm: float) -> None:
    disc, generator, gan, recon, target = _setup(PatchGAN2d, fm)
    disc.blocks[1][0].weight.requires_grad_(False)  # a flag the freeze must restore as it was
    marker = [torch.full_like(p, 7.0) for p in disc.parameters()]
    for p, m in zip(disc.parameters(), marker):
        p.grad = m.clone()
    loss, stats = gan.generator_loss(recon, target, disc, recon_loss=recon.abs().mean(), last_layer=generator.weight)
    loss.backward()
    assert all(torch.equal(p.grad, m) for p, m in zip(disc.parameters(), marker))
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0
    assert [p.requires_grad for p in disc.parameters()].count(False) == 1
    assert ("feature_matching" in stats) == (fm > 0)
