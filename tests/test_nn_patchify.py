"""Patchifier ``omni``: layout, inverse heads, shape rules and their error messages."""
from __future__ import annotations

import pytest
import torch

from omnipipe.errors import OmnipipeError
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.patchify import OmniPatchifier

P, PT, C = 2, 2, 3


def make(dim: int = 16, out_dim: int | None = None) -> OmniPatchifier:
    params = OmniPatchifier.Params(patch_size=P, temporal_patch_size=PT)
    return OmniPatchifier(params, in_channels=C, dim=dim, out_dim=out_dim).double()


@pytest.mark.parametrize(("t", "h", "w", "grid"), [(1, 4, 6, (1, 2, 3)), (5, 6, 4, (3, 3, 2)), (3, 2, 2, (2, 1, 1))])
def test_token_grid_and_pixel_shapes(t: int, h: int, w: int, grid: tuple[int, int, int]) -> None:
    patchifier = make(dim=16, out_dim=24)
    tokens = patchifier(torch.randn(2, C, t, h, w, dtype=torch.float64))
    assert tokens.shape == (2, *grid, 16)
    assert patchifier.latent_grid(t, h, w) == grid
    pixels = patchifier.unpatchify(torch.randn(2, *grid, 24, dtype=torch.float64))
    assert pixels.shape == (2, C, t, h, w)


def test_each_token_reads_exactly_its_patch() -> None:
    """Perturbing one pixel changes only the token whose (time, row, column) patch holds it."""
    patchifier = make()
    x = torch.randn(1, C, 5, 4, 6, dtype=torch.float64)
    base = patchifier(x)
    for t, y, xx in [(0, 3, 5), (1, 0, 0), (2, 1, 4), (4, 2, 3)]:
        bumped = x.clone()
        bumped[0, 1, t, y, xx] += 1.0
        changed = (patchifier(bumped) - base).abs().sum(-1)[0] > 0  # (T', H', W')
        expected = torch.zeros_like(changed)
        expected[0 if t == 0 else 1 + (t - 1) // PT, y // P, xx // P] = True
        assert torch.equal(changed, expected)


def test_heads_invert_embeddings_with_matching_layout() -> None:
    """With identity embeddings and heads, unpatchify ∘ patchify is the identity: the layouts match."""
    dim = C * PT * P * P
    patchifier = make(dim=dim)
    with torch.no_grad():
        eye = torch.eye(dim, dtype=torch.float64)
        patchifier.embed_first.weight.copy_(eye[:, : C * P * P])
        patchifier.head_first.weight.copy_(eye[: C * P * P])
        patchifier.embed_rest.weight.copy_(eye)
        patchifier.head_rest.weight.copy_(eye)
        for linear in (patchifier.embed_first, patchifier.embed_rest, patchifier.head_first, patchifier.head_rest):
            linear.bias.zero_()
    for t in (1, 5):
        x = torch.randn(2, C, t, 4, 6, dtype=torch.float64)
        torch.testing.assert_close(patchifier.unpatchify(patchifier(x)), x, rtol=0, atol=0)


def test_inflated_tubes_treat_a_static_clip_like_its_first_frame() -> None:
    patchifier = make(dim=16)
    patchifier.inflate_temporal_from_image()
    frame = torch.randn(2, C, 1, 4, 6, dtype=torch.float64)
    tokens = patchifier(frame.expand(-1, -1, 1 + 2 * PT, -1, -1))  # (B, 3, H', W', D)
    torch.testing.assert_close(tokens[:, 1:], tokens[:, :1].expand_as(tokens[:, 1:]))
    pixels = patchifier.unpatchify(tokens[:, :1].expand(-1, 3, -1, -1, -1))
    torch.testing.assert_close(pixels, patchifier.unpatchify(tokens[:, :1]).expand_as(pixels))
    assert patchifier.output_weight(1) is patchifier.head_first.weight
    assert patchifier.output_weight(5) is patchifier.head_rest.weight


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, C, 4, 4, 4), "T=4 frames, but T must be 1 or 1 + k·2"),
        ((1, C, 0, 4, 4), "T=0 frames"),
        ((1, C, 1, 5, 4), "H=5 and W=4 must both be multiples of 2"),
        ((1, C, 3, 4, 7), "H=4 and W=7 must both be multiples of 2"),
        ((1, 1, 1, 4, 4), "expected (B, C=3, T, H, W)"),
        ((C, 4, 4), "expected (B, C=3, T, H, W)"),
    ],
)
def test_bad_shapes_raise_one_clear_line(shape: tuple[int, ...], fragment: str) -> None:
    with pytest.raises(InputShapeError) as caught:
        make()(torch.zeros(shape, dtype=torch.float64))
    message = str(caught.value)
    assert fragment in message and str(shape) in message and "\n" not in message
    assert isinstance(caught.value, OmnipipeError) and isinstance(caught.value, ValueError)

