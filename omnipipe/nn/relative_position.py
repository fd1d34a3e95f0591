"""Swin-style relative position bias: one learned number per head and (row, column) offset in a window."""
from __future__ import annotations

import torch
from torch import nn


def relative_position_index(window_size: int) -> torch.Tensor:
    """(w², w²) index into the (2w − 1)² offsets table: (Δrow + w − 1) · (2w − 1) + (Δcol + w − 1), query − key."""
    rows, cols = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()  # (w²,) each, row-major inside the window
    d_row = rows[:, None] - rows[None, :] + window_size - 1
    d_col = cols[:, None] - cols[None, :] + window_size - 1
    return d_row * (2 * window_size - 1) + d_col


class RelativePositionBias(nn.Module):
    """The additive attention bias (heads, w², w²) of one window, from a ((2w − 1)², heads) table."""

    def __init__(self, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        self.register_buffer("index", relative_position_index(window_size), persistent=False)

    def forward(self) -> torch.Tensor:
        """(heads, w², w²): bias[n, i, j] for query i and key j of a window."""
        return self.table[self.index].permute(2, 0, 1)
