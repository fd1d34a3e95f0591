"""PatchGAN discriminators: logit shapes for images, clips and non-square frames; gradients flow."""
from __future__ import annotations

import pytest
import torch

from omnipipe.losses.gan import critic_for
from omnipipe.nn.discriminators.patchgan2d import PatchGAN2d
from omnipipe.nn.discriminators.patchgan3d import PatchGAN3d

SMALL = {"channels": 4, "layers": 3}


@pytest.mark.parametrize(
    ("shape", "logits"),
    [
        ((2, 3, 1, 32, 32), (2, 1, 1, 2, 2)),  # images
        ((2, 3, 5, 32, 32), (2, 1, 5, 2, 2)),  # clips, frame by frame
        ((1, 3, 2, 32, 48), (1, 1, 2, 2, 4)),  # non-square
    ],
)
def test_patchgan2d_shapes(shape: tuple[int, ...], logits: tuple[int, ...]) -> None:
    disc = PatchGAN2d(PatchGAN2d.Params(**SMALL))
    out, features = disc(torch.randn(shape), return_features=True)
    assert out.shape == logits
    assert len(features) == SMALL["layers"] + 1
    assert all(f.ndim == 5 and f.shape[:3:2] == (shape[0], shape[2]) for f in features)


@pytest.mark.parametrize(
    ("shape", "logits"),
    [
        ((2, 3, 1, 32, 32), (2, 1, 1, 2, 2)),  # an image is a one-frame clip
        ((2, 3, 17, 32, 32), (2, 1, 3, 2, 2)),  # T: 17 → 9 → 5 → 3
        ((1, 3, 4, 32, 48), (1, 1, 1, 2, 4)),  # non-square
    ],
)
def test_patchgan3d_shapes(shape: tuple[int, ...], logits: tuple[int, ...]) -> None:
    disc = PatchGAN3d(PatchGAN3d.Params(**SMALL))
    out, features = disc(torch.randn(shape), return_features=True)
    assert out.shape == logits
    assert len(features) == SMALL["layers"] + 1


@pytest.mark.parametrize("cls", [PatchGAN2d, PatchGAN3d])
@pytest.mark.parametrize("norm", ["batch", "group", "instance", "none"])
def test_gradients_reach_input_and_every_parameter(cls: type, norm: str) -> None:
    disc = cls(cls.Params(norm=norm, **SMALL))
    x = torch.randn(2, 3, 3, 32, 32, requires_grad=True)
    disc(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())


def test_explicit_init() -> None:
    disc = PatchGAN2d(PatchGAN2d.Params(channels=16, layers=2, norm="group"))
    conv = disc.blocks[1][0]
    assert conv.bias is None and abs(conv.weight.std().item() - 0.02) < 0.005
    assert torch.equal(disc.head.bias, torch.zeros(1))
    assert torch.equal(disc.blocks[1][1].bias, torch.zeros(32))


def test_a_frame_batch_needs_five_dimensions() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        PatchGAN2d(PatchGAN2d.Params(**SMALL))(torch.randn(2, 3, 32, 32))


def test_critic_for_picks_by_frame_count() -> None:
    images, clips = torch.zeros(1, 3, 1, 8, 8), torch.zeros(1, 3, 5, 8, 8)
    both = {"image", "video"}
    assert critic_for(both, images) == "image" and critic_for(both, clips) == "video"
    assert critic_for({"image"}, clips) == "image"
    assert critic_for({"video"}, images) == "video"
    with pytest.raises(KeyError, match="discriminator"):
        critic_for(set(), images)
