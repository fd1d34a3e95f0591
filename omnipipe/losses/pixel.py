"""Pixel reconstruction losses: mean absolute (``l1``) and mean squared (``l2``) error."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict


class _PixelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class L1Loss(torch.nn.Module):
    """Mean absolute error between reconstruction and target."""

    Params = _PixelParams

    def __init__(self, params: _PixelParams) -> None:
        super().__init__()
        self.params = params

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (reconstruction - target).abs().mean()


class L2Loss(torch.nn.Module):
    """Mean squared error between reconstruction and target."""

    Params = _PixelParams

    def __init__(self, params: _PixelParams) -> None:
        super().__init__()
        self.params = params

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (reconstruction - target).square().mean()
