"""Rotary positional encoding over time (1-D) and space (2-D axial), for any grid size.

Positions are integer token indices, so the same weights run at any resolution, aspect ratio and
frame count; since rotated q·k depends only on position offsets, windows need no local re-indexing.
"""
from __future__ import annotations

import torch

from omnipipe.nn.autograd_state import records_grad


def rope_angles(positions: torch.Tensor, channels: int, base: float = 10000.0) -> torch.Tensor:
    """Angles (..., channels // 2) for ``positions`` (...) at the standard RoPE frequencies."""
    freqs = base ** (-torch.arange(0, channels, 2, dtype=torch.float64, device=positions.device) / channels)
    return positions.to(torch.float64)[..., None] * freqs


def temporal_angles(t: int, head_dim: int, device: torch.device, start: int = 0) -> torch.Tensor:
    """Angles (T, head_dim // 2) rotating every channel pair by the frame index (``start`` … ``start + t − 1``)."""
    return rope_angles(torch.arange(start, start + t, device=device), head_dim)


def spatial_angles(h: int, w: int, head_dim: int, device: torch.device) -> torch.Tensor:
    """Angles (H, W, head_dim // 2): the first half of the pairs rotate by row, the second by column."""
    rows = rope_angles(torch.arange(h, device=device), head_dim // 2)  # (H, head_dim // 4)
    cols = rope_angles(torch.arange(w, device=device), head_dim // 2)  # (W, head_dim // 4)
    return torch.cat(
        [rows[:, None].expand(h, w, -1), cols[None, :].expand(h, w, -1)], dim=-1
    )  # (H, W, head_dim // 2)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + hd/2) of ``x`` (..., hd) by ``angles`` (broadcastable to (..., hd/2)).

    Outside autograd each half is written into the output directly: the same roundings as
    ``rotate_halves``, one pass over the output fewer. ``torch.compile`` traces ``rotate_halves``
    (writes into views of an output would break its graph) and fuses it.
    """
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if records_grad(x, angles) or torch.compiler.is_compiling():
        return rotate_halves(x, cos, sin)
    x1, x2 = x.chunk(2, dim=-1)
    out = torch.empty(torch.broadcast_shapes(x.shape, (*cos.shape[:-1], x.shape[-1])), dtype=x.dtype, device=x.device)
    first, second = out.chunk(2, dim=-1)
    torch.mul(x1, cos, out=first).sub_(x2 * sin)
    torch.mul(x1, sin, out=second).add_(x2 * cos)
    return out


def rotate_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Pairs (i, i + hd/2) by real arithmetic: ``[x1·cos − x2·sin, x1·sin + x2·cos]`` concatenated."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def interleaved_spatial_angles(h: int, w: int, head_dim: int, device: torch.device) -> torch.Tensor:
    """Angles (H, W, head_dim // 2) for adjacent pairs: pair 2j rotates by column, pair 2j + 1 by row.

    The released OmniTokenizer's 2-D RoPE; the frequencies are those of ``spatial_angles``.
    """
    rows = rope_angles(torch.arange(h, device=device), head_dim // 2)  # (H, head_dim // 4)
    cols = rope_angles(torch.arange(w, device=device), head_dim // 2)  # (W, head_dim // 4)
    pairs = torch.stack(
        [cols[None, :].expand(h, w, -1), rows[:, None].expand(h, w, -1)], dim=-1
    )  # (H, W, head_dim // 4, 2)
    return pairs.flatten(-2)


def apply_interleaved_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs (2i, 2i + 1) of ``x`` (..., hd) by ``angles`` (broadcastable to (..., hd/2)).

    For fp32 and fp64 one complex multiply, ``(x1 + i·x2)(cos + i·sin)``: torch's kernel rounds as
    ``rotate_pairs`` does, in one pass.
    """
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if x.dtype in (torch.float32, torch.float64) and _pairs_are_complex_numbers(x):
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
        return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)
    return rotate_pairs(x, cos, sin)


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Adjacent pairs by real arithmetic: ``(x1·cos − x2·sin, x1·sin + x2·cos)`` interleaved."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def _pairs_are_complex_numbers(x: torch.Tensor) -> bool:
    """Whether ``x``'s adjacent pairs can be viewed as complex numbers: contiguous pairs at even offsets."""
    return x.stride(-1) == 1 and x.storage_offset() % 2 == 0 and all(
        stride % 2 == 0 for size, stride in zip(x.shape[:-1], x.stride()[:-1]) if size > 1
    )
