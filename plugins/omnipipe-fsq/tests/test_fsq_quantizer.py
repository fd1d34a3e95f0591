"""FSQ: the quantizer contract, straight-through gradients, the code grid, fp32 under autocast."""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest
import torch

import omnipipe

try:
    from omnipipe_fsq import FiniteScalarQuantizer
except ModuleNotFoundError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from omnipipe_fsq import FiniteScalarQuantizer


def make(levels: list[int], dim: int = 16, identity: bool = False) -> FiniteScalarQuantizer:
    torch.manual_seed(0)
    fsq = FiniteScalarQuantizer(FiniteScalarQuantizer.Params(levels=levels), dim=dim)
    if identity:  # proj_in = identity, so tests can place inputs on the grid directly
        assert dim == len(levels)
        with torch.no_grad():
            fsq.proj_in.weight.copy_(torch.eye(dim))
            fsq.proj_in.bias.zero_()
    return fsq


def preimage(fsq: FiniteScalarQuantizer, values: torch.Tensor) -> torch.Tensor:
    """Projected inputs (..., d) whose bounded value is exactly ``values`` (integers in each channel's range)."""
    return torch.atanh((values + fsq.half_step) / fsq.half_range) - fsq.shift


def all_grid_values(levels: list[int]) -> torch.Tensor:
    """Every combination of per-channel integer values (prod(levels), d), channel 0 fastest."""
    ranges = [torch.arange(level) - level // 2 for level in levels]
    rows = [tuple(reversed(combo)) for combo in itertools.product(*reversed(ranges))]
    return torch.tensor(rows, dtype=torch.float32)


def test_contract_shapes_and_dtypes() -> None:
    fsq = make([8, 8, 4], dim=16)
    assert fsq.codebook_size == 256
    z = torch.randn(2, 3, 4, 5, 16)
    out = fsq(z)
    assert isinstance(out, omnipipe.QuantizerOutput)
    assert out.z_q.shape == z.shape and out.z_q.dtype == torch.float32
    assert out.codes.shape == (2, 3, 4, 5) and out.codes.dtype == torch.int64
    assert out.losses == {}
    assert set(out.stats) == {"usage", "perplexity"}
    assert 0 < float(out.stats["usage"]) <= 1 and 1 <= float(out.stats["perplexity"]) <= 256
    assert isinstance(fsq, omnipipe.Quantizer)


def test_bounds_give_exactly_the_levels() -> None:
    """Odd L: values -(L-1)/2..(L-1)/2; even L (half-step offset): -L/2..L/2-1; no more, no fewer."""
    fsq = make([2, 3, 4, 5, 8], dim=5)
    h = torch.linspace(-20, 20, 20001)[:, None].expand(-1, 5)
    rounded = torch.round(fsq.bound(h))
    for channel, level in enumerate([2, 3, 4, 5, 8]):
        found = sorted(set(rounded[:, channel].tolist()))
        assert found == [float(v) for v in range(-(level // 2), level - level // 2)], level


def test_grid_points_and_codes_closed_form() -> None:
    """Inputs on the grid come out as the grid / (L // 2); code = d0 + L0·d1 + L0·L1·d2 (mixed radix)."""
    levels = [3, 4, 5]
    fsq = make(levels, dim=3, identity=True)
    values = all_grid_values(levels)  # (60, 3)
    out = fsq(preimage(fsq, values)[:, None, None, None, :])
    q = fsq.quantize(preimage(fsq, values))
    assert torch.allclose(q, values / torch.tensor([1.0, 2.0, 2.0]))
    digits = values + torch.tensor([1.0, 2.0, 2.0])
    expected = (digits[:, 0] + 3 * digits[:, 1] + 12 * digits[:, 2]).long()
    assert torch.equal(out.codes.flatten(), expected)
    assert torch.equal(out.codes.flatten(), torch.arange(60))  # every code exactly once, in order
    assert float(out.stats["usage"]) == 1.0
    assert math.isclose(float(out.stats["perplexity"]), 60, rel_tol=1e-5)


def test_decode_codes_inverts_codes() -> None:
    fsq = make([8, 5, 5, 5], dim=32)
    out = fsq(torch.randn(2, 1, 6, 6, 32) * 3)
    assert torch.allclose(fsq.decode_codes(out.codes), out.z_q, atol=1e-6)
    every = torch.arange(fsq.codebook_size)
    assert torch.equal(fsq.codes_from_grid(fsq.grid_from_codes(every)), every)


def test_straight_through_gradient_reaches_input() -> None:
    fsq = make([8, 8, 4], dim=8)
    z = torch.randn(2, 1, 4, 4, 8, requires_grad=True)
    out = fsq(z)
    out.z_q.square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert fsq.proj_in.weight.grad is not None and fsq.proj_in.weight.grad.abs().sum() > 0
    # the rounding step itself has gradient one: d quantize / d bounded = 1 / (L // 2)
    h = torch.tensor([[0.3, -0.2, 0.1]], requires_grad=True)
    fsq.quantize(h).sum().backward()
    bounded_grad = (1 - torch.tanh(h.detach() + fsq.shift) ** 2) * fsq.half_range / fsq.half_width
    assert torch.allclose(h.grad, bounded_grad)


@pytest.mark.parametrize("levels", [[8, 8, 4], [8, 5, 5, 5]])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_gives_fp32_codes_and_reaches_every_code(dtype: torch.dtype, levels: list[int]) -> None:
    """Under autocast, with low-precision inputs, codes equal the fp32 codes and the whole grid is used
    (bf16 holds integers exactly only up to 256: a code index computed in bf16 loses codes above it)."""
    fsq = make(levels, dim=len(levels), identity=True)
    torch.manual_seed(1)
    low = -(torch.tensor(levels) // 2)  # each channel's lowest integer value
    values = low + torch.rand(64, 1, 16, 16, len(levels)) * torch.tensor(levels) - 0.5  # uniform over the cells
    z = preimage(fsq, values.clamp(low, low + torch.tensor(levels) - 1)).to(dtype)  # 16384 tokens
    reference = fsq(z.float())
    with torch.autocast("cpu", dtype=dtype):
        out = fsq(z)
    assert out.z_q.dtype == torch.float32
    assert torch.equal(out.codes, reference.codes)
    assert torch.equal(torch.unique(out.codes), torch.arange(fsq.codebook_size))
    assert float(out.stats["usage"]) == 1.0


def test_low_precision_module_weights_still_quantize_in_fp32() -> None:
    fsq = make([8, 8, 4], dim=8)
    z = torch.randn(4, 1, 4, 4, 8)
    reference = fsq(z)
    half = make([8, 8, 4], dim=8).to(torch.bfloat16)
    out = half(z.to(torch.bfloat16))
    assert out.z_q.dtype == torch.float32 and torch.isfinite(out.z_q).all()
    assert out.codes.shape == reference.codes.shape


def test_state_dict_holds_only_the_projections() -> None:
    assert sorted(make([8, 8, 4]).state_dict()) == ["proj_in.bias", "proj_in.weight", "proj_out.bias", "proj_out.weight"]


def test_params_reject_bad_levels() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        FiniteScalarQuantizer.Params(levels=[8, 1])
    with pytest.raises(ValueError):
        FiniteScalarQuantizer.Params(levels=[])
