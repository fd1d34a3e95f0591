"""Attention kinds against float64 dense references, and RoPE's relative-position property."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omnipipe.nn.attention import Attention
from omnipipe.nn.rope import apply_rope, spatial_angles, temporal_angles
from omnipipe.nn.spatial_attention import FullAttention, WindowAttention
from omnipipe.nn.temporal_attention import CausalAttention

DIM, HEADS = 16, 2


def dense_reference(module: Attention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Softmax attention over all B's T·H·W tokens at once, ``allowed`` (N, N) masking which pairs meet."""
    b, t, h, w, d = x.shape
    q, k, v = (a.reshape(b, t * h * w, HEADS, -1).transpose(1, 2) for a in module.project(x))  # (B, n, N, hd)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    out = (weights @ v).transpose(1, 2).reshape(b, t, h, w, d)
    return module.proj(out)


def grid_coords(t: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tt, yy, xx = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    return tt.flatten(), yy.flatten(), xx.flatten()


def test_full_attention_is_per_frame_dense_softmax() -> None:
    torch.manual_seed(0)
    module = FullAttention(FullAttention.Params(), dim=DIM, num_heads=HEADS).double()
    x = torch.randn(2, 3, 5, 6, DIM, dtype=torch.float64)
    tt, _, _ = grid_coords(3, 5, 6)
    torch.testing.assert_close(module(x), dense_reference(module, x, tt[:, None] == tt[None, :]))


@pytest.mark.parametrize(("h", "w", "ws"), [(8, 8, 4), (6, 10, 4), (5, 7, 3), (3, 2, 4)])
def test_window_attention_is_full_attention_under_block_diagonal_mask(h: int, w: int, ws: int) -> None:
    torch.manual_seed(1)
    module = WindowAttention(WindowAttention.Params(window_size=ws), dim=DIM, num_heads=HEADS).double()
    x = torch.randn(2, 2, h, w, DIM, dtype=torch.float64)
    tt, yy, xx = grid_coords(2, h, w)
    window = tt * 10_000 + (yy // ws) * 100 + xx // ws
    torch.testing.assert_close(module(x), dense_reference(module, x, window[:, None] == window[None, :]))


def test_causal_attention_is_masked_full_attention() -> None:
    torch.manual_seed(2)
    module = CausalAttention(CausalAttention.Params(), dim=DIM, num_heads=HEADS).double()
    x = torch.randn(2, 5, 3, 4, DIM, dtype=torch.float64)
    tt, yy, xx = grid_coords(5, 3, 4)
    allowed = (yy[:, None] == yy[None, :]) & (xx[:, None] == xx[None, :]) & (tt[None, :] <= tt[:, None])
    torch.testing.assert_close(module(x), dense_reference(module, x, allowed))


def test_causal_single_frame_shortcut_matches_first_frame_of_a_clip() -> None:
    torch.manual_seed(3)
    module = CausalAttention(CausalAttention.Params(), dim=DIM, num_heads=HEADS).double()
    x = torch.randn(2, 4, 3, 3, DIM, dtype=torch.float64)
    torch.testing.assert_close(module(x[:, :1]), module(x)[:, :1], rtol=1e-12, atol=1e-12)


def test_rope_scores_depend_only_on_offsets() -> None:
    """q·k after rotation is unchanged when both positions shift by the same amount (space and time)."""
    torch.manual_seed(4)
    q, k = torch.randn(2, 8, dtype=torch.float64)
    space = spatial_angles(9, 11, 8, torch.device("cpu"))  # (H, W, 4)
    time = temporal_angles(12, 8, torch.device("cpu"))  # (T, 4)

    def score(angles_q: torch.Tensor, angles_k: torch.Tensor) -> torch.Tensor:
        return apply_rope(q, angles_q) @ apply_rope(k, angles_k)

    base = score(space[1, 2], space[4, 7])
    torch.testing.assert_close(score(space[5, 3], space[8, 8]), base)
    assert not torch.allclose(score(space[1, 2], space[4, 8]), base)
    torch.testing.assert_close(score(time[2], time[7]), score(time[6], time[11]))
    assert not torch.allclose(score(time[2], time[7]), score(time[2], time[8]))


def test_attention_dims_are_checked() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        FullAttention(FullAttention.Params(), dim=18, num_heads=4)
    with pytest.raises(ValueError, match="divisible by 4"):
        WindowAttention(WindowAttention.Params(), dim=12, num_heads=2)


def test_window_attention_uses_no_dense_mask_on_divisible_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows are folded into the batch: SDPA sees (B·T·windows, heads, w², hd), masked only when padded."""
    seen: list[tuple[tuple[int, ...], object]] = []
    original = F.scaled_dot_product_attention

    def spy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None, **kw):
        seen.append((tuple(q.shape), None if attn_mask is None else tuple(attn_mask.shape)))
        return original(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    module = WindowAttention(WindowAttention.Params(window_size=4), dim=DIM, num_heads=HEADS)
    module(torch.randn(1, 2, 8, 8, DIM))
    module(torch.randn(1, 1, 6, 8, DIM))
    assert seen == [((8, HEADS, 16, 8), None), ((4, HEADS, 16, 8), (4, 1, 1, 16))]
