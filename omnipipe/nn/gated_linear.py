"""The gated product of GEGLU and SwiGLU, ``value · act(gate)``, with the activation and the gate fused into oneDNN's GEMM.

One fused projection's rows hold the value half, then the gate half (``nn.Linear(dim, 2 · hidden)``).
Computed as one product and then chunked, the halves are strided views, which the activation and
the multiply read at a fraction of the speed of contiguous tensors, and at 5,120 tokens the single
2,730-wide product runs slower than two 1,365-wide ones. So where ``omnipipe.nn.linear`` takes
oneDNN and no gradient is recorded, the halves are two oneDNN products: the gate's applies the
activation in its epilogue, the value's multiplies by the gate in its own, and no elementwise pass
is left (1.1–1.4× on the paper's GEGLU, ``benchmarks/fusion.py``). Under autograd (where two
products gained nothing) and for smaller products the one-product form stays, so their values do not change.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from omnipipe.nn.autograd_state import records_grad
from omnipipe.nn.linear import linear, uses_onednn

GateActivation = Literal["gelu", "silu"]
_ACTIVATIONS = {"gelu": F.gelu, "silu": F.silu}
_ONEDNN_ATTRS = {"gelu": ("gelu", "none"), "silu": ("swish", "")}  # oneDNN's erf GELU and x·sigmoid(x)


def gated_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: GateActivation
) -> torch.Tensor:
    """``value · act(gate)`` where ``value, gate = F.linear(x, weight, bias).chunk(2, -1)``; (..., 2h) rows → (..., h)."""
    hidden = weight.shape[0] // 2
    weights = weight[:hidden], weight[hidden:]
    biases = (None, None) if bias is None else (bias[:hidden], bias[hidden:])
    if records_grad(x, weight, bias) or not uses_onednn(x, weights[1], biases[1]):
        value, gate = linear(x, weight, bias).chunk(2, dim=-1)
        return value * _ACTIVATIONS[activation](gate)
    attr, algorithm = _ONEDNN_ATTRS[activation]
    gate = torch.ops.mkldnn._linear_pointwise(x, weights[1], biases[1], attr, [], algorithm)
    return torch.ops.mkldnn._linear_pointwise.binary(x, gate, weights[0], biases[0], "mul")
