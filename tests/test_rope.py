"""RoPE's faster paths: the same roundings as the plain real arithmetic, and the rotation of a float64 complex reference."""
from __future__ import annotations

import pytest
import torch

from omnipipe.nn.rope import (
    apply_interleaved_rope,
    apply_rope,
    interleaved_spatial_angles,
    rotate_halves,
    rotate_pairs,
    spatial_angles,
    temporal_angles,
)

CPU = torch.device("cpu")


def qk_views(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """q and k as attention sees them: strided (B, T, H, W, heads, hd) views into one fused qkv output."""
    qkv = torch.randn(2, 3, 4, 6, 3 * 4 * 16, generator=torch.Generator().manual_seed(0)).to(dtype)
    q, k, _ = qkv.unflatten(-1, (3, 4, 16)).unbind(-3)
    return q, k


def halves_formula(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    return rotate_halves(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


def pairs_formula(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    return rotate_pairs(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


def complex_reference(x: torch.Tensor, angles: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Float64: pair (a, b) as a + i·b times exp(i·angle); pairs adjacent or (i, i + hd/2)."""
    x = x.double()
    pairs = x.unflatten(-1, (-1, 2)) if interleaved else x.unflatten(-1, (2, -1)).transpose(-1, -2)
    rotated = torch.view_as_real(torch.view_as_complex(pairs.contiguous()) * torch.polar(torch.ones_like(angles), angles))
    return rotated.flatten(-2) if interleaved else rotated.transpose(-1, -2).flatten(-2)


ANGLES = {
    "spatial": spatial_angles(4, 6, 16, CPU)[:, :, None],  # (H, W, 1, hd/2)
    "temporal": temporal_angles(3, 16, CPU)[:, None, None, None],  # (T, 1, 1, 1, hd/2)
}


@pytest.mark.parametrize("kind", list(ANGLES))
def test_halves_rope_without_autograd_rounds_as_the_real_formula(kind: str) -> None:
    q, k = qk_views()
    angles = ANGLES[kind]
    with torch.no_grad():
        for x in (q, k, q.double(), q.to(torch.bfloat16)):
            out = apply_rope(x, angles)
            assert out.dtype == x.dtype and torch.equal(out, halves_formula(x, angles))
        torch.testing.assert_close(apply_rope(q, angles).double(), complex_reference(q, angles, False), rtol=1e-6, atol=1e-6)


def test_halves_rope_under_autograd_has_the_float64_gradient() -> None:
    q = qk_views()[0].detach().requires_grad_()
    angles = ANGLES["spatial"]
    out = apply_rope(q, angles)
    assert torch.equal(out, halves_formula(q, angles))
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(upstream)
    q64 = q.detach().double().requires_grad_()
    complex_reference(q64, angles, False).backward(upstream.double())
    torch.testing.assert_close(q.grad.double(), q64.grad, rtol=1e-6, atol=1e-6)


def test_interleaved_rope_is_one_complex_multiply_with_the_real_roundings() -> None:
    q, _ = qk_views()
    angles = interleaved_spatial_angles(4, 6, 16, CPU)[:, :, None]
    transposed = q.transpose(-1, -2).contiguous().transpose(-1, -2)  # last dim strided: the real-arithmetic path
    odd_offset = torch.randn(*q.shape[:-1], 17)[..., 1:]  # pairs start at odd addresses: the same
    odd_rows = torch.randn(*q.shape[:-2], 1, 17)[..., :16].expand_as(q)  # odd row stride, heads broadcast
    for x in (q, q.double(), q.to(torch.bfloat16), transposed, odd_offset, odd_rows):
        out = apply_interleaved_rope(x, angles)
        assert out.dtype == x.dtype and torch.equal(out, pairs_formula(x, angles))
    torch.testing.assert_close(apply_interleaved_rope(q, angles).double(), complex_reference(q, angles, True), rtol=1e-6, atol=1e-6)
    grad_input = q.detach().requires_grad_()
    apply_interleaved_rope(grad_input, angles).square().sum().backward()
    q64 = q.detach().double().requires_grad_()
    complex_reference(q64, angles, True).square().sum().backward()
    torch.testing.assert_close(grad_input.grad.double(), q64.grad, rtol=1e-5, atol=1e-5)
