"""Pixel reconstruction losses: mean absolute (``l1``) and mean squared (``l2``) error."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict


class PixelLoss(torch.nn.Module):
    """Base of the parameter-free pixel losses: ``forward(reconstruction, target) -> scalar``."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.params = params


class L1Loss(PixelLoss):
    """Mean absolute error between reconstruction and target."""

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (reconstruction - target).abs().mean()


class L2Loss(PixelLoss):
    """Mean squared error between reconstruction and target."""

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (reconstruction - target).square().mean()
