"""The pixel losses give the textbook values and gradients."""
from __future__ import annotations

import torch

from omnipipe.losses.pixel import L1Loss, L2Loss


def test_l1_and_l2_values_and_gradients() -> None:
    target = torch.zeros(1, 3, 1, 2, 2)
    recon = torch.full_like(target, 0.5).requires_grad_()
    l1 = L1Loss(L1Loss.Params())(recon, target)
    l2 = L2Loss(L2Loss.Params())(recon, target)
    assert l1.item() == 0.5 and l2.item() == 0.25
    l2.backward()
    assert torch.allclose(recon.grad, torch.full_like(target, 2 * 0.5 / target.numel()))
