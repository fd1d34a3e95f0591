"""The oneDNN linear path: same values and gradients as a float64 product, taken only where it should be."""
from __future__ import annotations

import pytest
import torch

from omnipipe.nn.linear import Linear, linear, onednn_available, uses_onednn

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN linear")


def _large(grad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(2, 520, 512) tokens, a (768, 512) weight and its bias: 409 M multiply-adds, over the threshold."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 520, 512, generator=g)
    weight = torch.randn(768, 512, generator=g) / 512**0.5
    bias = torch.randn(768, generator=g)
    return x.requires_grad_(grad), weight.requires_grad_(grad), bias.requires_grad_(grad)


def test_large_fp32_products_take_onednn_and_others_do_not() -> None:
    x, weight, bias = _large()
    assert uses_onednn(x, weight, bias)
    assert not uses_onednn(x[:, :8], weight, bias)  # 3 M multiply-adds: torch's own kernel
    assert not uses_onednn(x.double(), weight.double(), bias.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not uses_onednn(x, weight, bias)
        assert linear(x, weight, bias).dtype == torch.bfloat16  # autocast still applies


def test_forward_matches_float64_for_strided_inputs_and_weight_slices() -> None:
    x, weight, bias = _large()
    strided = x.transpose(0, 1)  # (520, 2, 512), not contiguous
    rows = weight[256:]  # a slice of a fused projection, as attention's q and kv use
    for inp, w, b in ((x, weight, bias), (strided, weight, bias), (x, rows, bias[256:]), (x, weight, None)):
        assert uses_onednn(inp, w, b)
        expected = inp.double() @ w.double().T + (0 if b is None else b.double())
        out = linear(inp, w, b)
        assert out.shape == expected.shape
        torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=2e-5)


def test_gradients_match_float64() -> None:
    x, weight, bias = _large(grad=True)
    out = linear(x, weight, bias)
    assert out.grad_fn is not None and "OneDnn" in type(out.grad_fn).__name__
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(upstream)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, weight, bias))
    (x64 @ w64.T + b64).backward(upstream.double())
    for got, want in ((x.grad, x64.grad), (weight.grad, w64.grad), (bias.grad, b64.grad)):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


def test_only_the_weight_trains() -> None:
    """Input without grad (the first layer on data), frozen bias: only the weight gets a gradient."""
    x, weight, bias = _large()
    weight.requires_grad_()
    linear(x, weight, bias).square().mean().backward()
    expected = torch.autograd.grad((x.double() @ weight.double().T + bias.double()).square().mean(), weight)[0]
    torch.testing.assert_close(weight.grad.double(), expected.double(), rtol=1e-5, atol=1e-6)
    assert bias.grad is None


def test_linear_module_keeps_nn_linear_state_dict() -> None:
    reference = torch.nn.Linear(512, 768)
    layer = Linear(512, 768)
    layer.load_state_dict(reference.state_dict())
    x = _large()[0]
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=2e-5)
