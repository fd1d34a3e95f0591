"""ALiBi (Press et al.): a per-head linear penalty on the distance between query and key positions."""
from __future__ import annotations

import math

import torch


def alibi_slopes(num_heads: int) -> list[float]:
    """The geometric slopes 2^(−8/n · (i + 1)); for a non-power-of-two count, the paper's interleaved extension."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start**(i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]


def alibi_bias(num_heads: int, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(heads, T, T): −slope · |i − j| for query i and key j."""
    positions = torch.arange(length, device=device)
    distance = (positions[:, None] - positions[None]).abs().to(dtype)
    return -torch.tensor(alibi_slopes(num_heads), device=device, dtype=dtype)[:, None, None] * distance
