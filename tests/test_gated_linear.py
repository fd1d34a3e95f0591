"""GEGLU/SwiGLU's gated product: fused on oneDNN for large fp32 products without autograd, float64 values and gradients, the rest unchanged."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from omnipipe.nn.gated_linear import gated_linear
from omnipipe.nn.linear import onednn_available, uses_onednn
from omnipipe.nn.mlp import Mlp

ACTIVATIONS = {"gelu": F.gelu, "silu": F.silu}


def paper_mlp_input(tokens: int = 700) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens, 512) input and the (2 · 1,365, 512) fused weight and bias of a paper-scale GEGLU."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(tokens, 512, generator=g), torch.randn(2730, 512, generator=g) / 512**0.5, torch.randn(2730, generator=g)


def float64_gated(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    value, gate = (x.double() @ weight.double().T + bias.double()).chunk(2, dim=-1)
    return value * ACTIVATIONS[activation](gate)


@pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN linear")
@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_fused_inference_matches_float64(activation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x, weight, bias = paper_mlp_input()
    assert uses_onednn(x, weight[1365:], bias[1365:])
    calls: list[object] = []
    monkeypatch.setattr(F, "linear", lambda *args: calls.append(args) or torch.zeros(()))  # the fused path never calls it
    with torch.no_grad():
        out = gated_linear(x, weight, bias, activation)
    assert calls == [] and out.shape == (700, 1365)
    torch.testing.assert_close(out.double(), float64_gated(x, weight, bias, activation), rtol=1e-5, atol=1e-4)
    strided = torch.stack([x, x], dim=1)[:, 0]  # rows 2·512 floats apart
    assert not strided.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(gated_linear(strided, weight, bias, activation), out, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN linear")
def test_training_keeps_the_one_product_form_with_float64_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    x, weight, bias = (t.requires_grad_() for t in paper_mlp_input(300))
    fused = torch.ops.mkldnn._linear_pointwise.binary
    monkeypatch.setattr(torch.ops.mkldnn._linear_pointwise, "binary", lambda *args: pytest.fail("fused under autograd"))
    out = gated_linear(x, weight, bias, "gelu")
    monkeypatch.setattr(torch.ops.mkldnn._linear_pointwise, "binary", fused)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(upstream)
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, weight, bias))
    expected = float64_gated(x64, w64, b64, "gelu")
    torch.testing.assert_close(out.detach().double(), expected.detach(), rtol=1e-5, atol=1e-4)
    expected.backward(upstream.double())
    for got, want in ((x.grad, x64.grad), (weight.grad, w64.grad), (bias.grad, b64.grad)):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


def test_small_products_keep_the_one_product_form_bit_for_bit() -> None:
    """Width-64 layers (the tiny pipeline's) compute exactly what the chunked single product gives."""
    torch.manual_seed(0)
    mlp = Mlp(64, 4.0, "geglu")
    x = torch.randn(3, 40, 64)
    assert not uses_onednn(x, mlp.fc_in.weight, mlp.fc_in.bias)
    value, gate = F.linear(x, mlp.fc_in.weight, mlp.fc_in.bias).chunk(2, dim=-1)
    expected = F.linear(value * F.gelu(gate), mlp.fc_out.weight, mlp.fc_out.bias)
    with torch.no_grad():
        assert torch.equal(mlp(x), expected)
    assert torch.equal(mlp(x).detach(), expected.detach())
