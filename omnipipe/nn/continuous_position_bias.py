"""Continuous position bias (Swin V2): an MLP maps each log-spaced (Δrow, Δcol) offset to one bias per head."""
from __future__ import annotations

import torch
from torch import nn


class ContinuousPositionBias(nn.Module):
    """Bias (heads, H·W, H·W) for full attention over an H×W grid, any size: ``Linear(2, hidden)``, two hidden layers.

    Offsets enter as sign(Δ)·log(1 + |Δ|); leaky-ReLU slope 0.1 (the released OmniTokenizer's ``rel`` bias).
    """

    def __init__(self, num_heads: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, num_heads)
        )

    def forward(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(heads, H·W, H·W): bias[n, i, j] for query i and key j in row-major order."""
        rows, cols = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        grid = torch.stack([rows.flatten(), cols.flatten()], dim=-1)  # (H·W, 2)
        offsets = (grid[:, None] - grid[None]).float()  # (H·W, H·W, 2), query − key
        offsets = offsets.sign() * offsets.abs().add(1).log()
        return self.net(offsets.to(self.net[0].weight.dtype)).permute(2, 0, 1)
