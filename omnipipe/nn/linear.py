"""Linear layers whose large fp32 CPU products run on oneDNN's GEMM rather than torch's default BLAS.

On CPU torch multiplies fp32 matrices with MKL's sgemm. The oneDNN library in the same torch build
is 1.1–1.5× faster at the transformer's shapes (width 512, a thousand tokens and more; see
``benchmarks/linear.py``) and no faster on small ones, where its call overhead shows. ``linear``
therefore sends a product to oneDNN only when it is fp32 on CPU, holds at least ``ONEDNN_MIN_MACS``
multiply-adds, runs outside autocast and ``torch.compile``, and has plain tensors (no FSDP DTensor);
everything else goes to ``F.linear``. In training the input's gradient is a oneDNN product too; the
weight's and the bias's come from torch.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx, once_differentiable

from omnipipe.nn.autograd_state import records_grad

ONEDNN_MIN_MACS = 1 << 27  # below ~134 M multiply-adds oneDNN is no faster (width-64 shapes measure 0.98–1.06×)


@functools.cache
def onednn_available() -> bool:
    """Whether this torch build has oneDNN's linear kernel."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def uses_onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether ``linear(x, weight, bias)`` goes to oneDNN (see the module doc)."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return (
        x.device.type == "cpu"
        and all(type(t) in (torch.Tensor, nn.Parameter) and t.dtype == torch.float32 for t in tensors)
        and math.prod(x.shape[:-1]) * weight.shape[0] * weight.shape[1] >= ONEDNN_MIN_MACS
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and onednn_available()
    )


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` on oneDNN, differentiable once."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad
        grad_x = _onednn_linear(grad, weight.t(), None) if needs_x else None
        flat_grad = grad.reshape(-1, grad.shape[-1])
        grad_weight = flat_grad.t() @ x.reshape(-1, x.shape[-1]) if needs_weight else None
        grad_bias = flat_grad.sum(0) if ctx.has_bias and needs_bias else None
        return grad_x, grad_weight, grad_bias


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear``, on oneDNN where that is faster (see the module doc)."""
    if not uses_onednn(x, weight, bias):
        return F.linear(x, weight, bias)
    if records_grad(x, weight, bias):
        return _OneDnnLinear.apply(x, weight, bias)
    return _onednn_linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) computed by ``linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
