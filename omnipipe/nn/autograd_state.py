"""Whether autograd records an operation: the test that picks between a differentiable and a faster path."""
from __future__ import annotations

import torch


def records_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether an operation on ``tensors`` (None for an absent bias) would be recorded for backward now."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
