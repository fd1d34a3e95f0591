"""BSQ: the quantizer contract, the sphere, straight-through gradients, closed-form entropy, reduced precision."""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest
import torch

import omnipipe

try:
    from omnipipe_bsq import BinarySphericalQuantizer
except ModuleNotFoundError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from omnipipe_bsq import BinarySphericalQuantizer

LN2 = math.log(2)


def make(dim: int = 16, identity: bool = False, **params: object) -> BinarySphericalQuantizer:
    torch.manual_seed(0)
    bsq = BinarySphericalQuantizer(BinarySphericalQuantizer.Params(**params), dim=dim)
    if identity:  # proj_in = identity: tests place projected latents directly
        with torch.no_grad():
            bsq.proj_in.weight.copy_(torch.eye(bsq.code_bits, dim))
            bsq.proj_in.bias.zero_()
    return bsq


def tokens(rows: torch.Tensor) -> torch.Tensor:
    """(N, K) → (N, 1, 1, 1, K)."""
    return rows[:, None, None, None, :]


def reference_entropies(u: torch.Tensor, inv_temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's definition by brute force over all 2^K codes: softmax(τ c·u), float64."""
    k = u.shape[-1]
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=k)), dtype=torch.float64) / math.sqrt(k)
    log_p = torch.log_softmax(inv_temperature * u.double() @ corners.T, dim=-1)  # (N, 2^K)
    per_sample = -(log_p.exp() * log_p).sum(-1).mean()
    average = log_p.exp().mean(0)
    return per_sample, -torch.xlogy(average, average).sum()


def test_contract_shapes_and_dtypes() -> None:
    bsq = make(dim=16, code_bits=8)
    assert bsq.codebook_size == 256
    z = torch.randn(2, 3, 4, 5, 16)
    out = bsq(z)
    assert isinstance(out, omnipipe.QuantizerOutput) and isinstance(bsq, omnipipe.Quantizer)
    assert out.z_q.shape == z.shape and out.z_q.dtype == torch.float32
    assert out.codes.shape == (2, 3, 4, 5) and out.codes.dtype == torch.int64
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < 256
    assert set(out.losses) == {"commitment", "entropy"}
    assert all(loss.shape == () and loss.requires_grad for loss in out.losses.values())
    assert {"usage", "perplexity"} <= set(out.stats)


def test_codes_live_on_the_sphere_and_decode_inverts_them() -> None:
    bsq = make(dim=4, identity=True, code_bits=4)
    h = torch.tensor([[3.0, -1.0, 0.5, -0.1], [-1.0, -2.0, -3.0, -4.0], [0.2, 0.1, 0.3, 0.4]])
    out = bsq(tokens(h))
    assert out.codes.flatten().tolist() == [1 + 4, 0, 15]
    corners = (((out.codes[..., None] >> torch.arange(4)) & 1).float() * 2 - 1) / 2  # ±1/sqrt(4)
    assert torch.allclose(corners.norm(dim=-1), torch.ones(3, 1, 1, 1))
    assert torch.allclose(bsq.decode_codes(out.codes), out.z_q, atol=1e-6)
    assert torch.allclose(bsq.decode_codes(out.codes), bsq.proj_out(corners), atol=1e-6)
    big = make(dim=32, code_bits=12)
    out = big(torch.randn(2, 1, 5, 5, 32))
    assert torch.allclose(big.decode_codes(out.codes), out.z_q, atol=1e-5)


def test_input_scale_does_not_matter() -> None:
    """The l2 normalisation: scaling the projected latents changes neither codes nor losses."""
    bsq = make(dim=6, identity=True, code_bits=6)
    h = torch.randn(10, 6)
    small, large = bsq(tokens(h * 0.01)), bsq(tokens(h * 100))
    assert torch.equal(small.codes, large.codes)
    assert torch.allclose(small.z_q, large.z_q, atol=1e-5)
    for name in small.losses:
        assert torch.allclose(small.losses[name], large.losses[name], atol=1e-6)


def test_straight_through_gradient_reaches_input() -> None:
    bsq = make(dim=8, code_bits=8)
    z = torch.randn(2, 1, 4, 4, 8, requires_grad=True)
    bsq(z).z_q.square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    z.grad = None
    bsq(z).losses["entropy"].backward()
    assert z.grad.abs().sum() > 0
    z.grad = None
    bsq(z).losses["commitment"].backward()
    assert z.grad.abs().sum() > 0


def test_commitment_closed_form() -> None:
    """||u − q||² = 2 − 2 u·q: 0 on a corner; 2 − 2/sqrt(K) on an axis (u = e_1)."""
    k = 4
    bsq = make(dim=k, identity=True, code_bits=k, beta=1.0)
    corner = bsq(tokens(torch.tensor([[1.0, -1.0, 1.0, 1.0]])))
    assert float(corner.losses["commitment"].detach()) < 1e-12
    axis = bsq(tokens(torch.tensor([[5.0, 0.0, 0.0, 0.0]])))
    assert math.isclose(float(axis.losses["commitment"].detach()), 2 - 2 / math.sqrt(k), rel_tol=1e-6)


def test_entropy_matches_the_softmax_over_all_codes() -> None:
    torch.manual_seed(3)
    h = torch.randn(64, 4)
    u = torch.nn.functional.normalize(h, dim=-1)
    for tau in [1.0, 10.0]:
        bsq = make(dim=4, identity=True, code_bits=4, inv_temperature=tau)
        per_sample, codebook = omnipipe.binary_entropy_terms(2 * tau / 2 * u, group_bits=4)  # 2τ u_k / sqrt(K)
        want_sample, want_codebook = reference_entropies(u, tau)
        assert torch.allclose(per_sample.double(), want_sample, atol=1e-5)
        assert torch.allclose(codebook.double(), want_codebook, atol=1e-5)
        out = bsq(tokens(h))
        assert torch.allclose(out.losses["entropy"].double(), 0.1 * (want_sample - want_codebook), atol=1e-5)
        assert math.isclose(float(out.stats["sample_entropy"]), float(want_sample), rel_tol=1e-5)


def test_entropy_closed_forms() -> None:
    bits = 3
    bsq = make(dim=bits, identity=True, code_bits=bits, entropy_weight=1.0, inv_temperature=1e4)
    # uniform: u = 0 (zero input) → every sample uniform over 2^K codes: both terms K·ln 2, penalty 0
    out = bsq(torch.zeros(5, 1, 1, 1, bits))
    assert math.isclose(float(out.stats["sample_entropy"]), bits * LN2, rel_tol=1e-6)
    assert math.isclose(float(out.stats["codebook_entropy"]), bits * LN2, rel_tol=1e-6)
    assert abs(float(out.losses["entropy"].detach())) < 1e-6
    # degenerate: every token on the same corner, sharp assignment → both terms 0
    out = bsq(torch.ones(6, 1, 1, 1, bits))
    assert float(out.stats["sample_entropy"]) < 1e-12 and float(out.stats["codebook_entropy"]) < 1e-12
    assert float(out.stats["usage"]) == 1 / 8 and float(out.stats["perplexity"]) == 1.0
    # ideal: each corner once → per-sample 0, codebook K·ln 2, penalty −K·ln 2
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)))
    out = bsq(tokens(corners))
    assert float(out.stats["sample_entropy"]) < 1e-12
    assert math.isclose(float(out.stats["codebook_entropy"]), bits * LN2, rel_tol=1e-6)
    assert math.isclose(float(out.losses["entropy"].detach()), -bits * LN2, rel_tol=1e-6)
    assert float(out.stats["usage"]) == 1.0 and math.isclose(float(out.stats["perplexity"]), 8, rel_tol=1e-6)


def test_paper_scale_codebook_in_entropy_groups() -> None:
    bsq = make(dim=32, code_bits=18, entropy_group_bits=9)  # the paper's 18 bits in two groups of 9
    assert bsq.codebook_size == 2**18
    out = bsq(torch.randn(2, 1, 4, 4, 32))
    assert torch.isfinite(out.losses["entropy"]) and int(out.codes.max()) < 2**18


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_losses_are_finite_and_codes_match_fp32(dtype: torch.dtype) -> None:
    bsq = make(dim=16, code_bits=8, inv_temperature=1e3)  # sharp assignment: large log-odds
    torch.manual_seed(2)
    for magnitude in [1e-4, 1.0, 1e4]:
        z = (torch.randn(4, 1, 8, 8, 16) * magnitude).to(dtype)
        reference = bsq(z.float())
        with torch.autocast("cpu", dtype=dtype):
            out = bsq(z)
        assert all(torch.isfinite(loss) for loss in out.losses.values()), (magnitude, out.losses)
        assert all(loss.dtype == torch.float32 for loss in out.losses.values())
        assert torch.equal(out.codes, reference.codes)
        for name in out.losses:
            assert torch.allclose(out.losses[name], reference.losses[name], rtol=1e-5, atol=1e-6)
        out.losses["entropy"].backward()
    low = make(dim=16, code_bits=8).to(dtype)  # a low-precision module: still fp32 inside
    out = low(torch.randn(4, 1, 8, 8, 16).to(dtype) * 1e3)
    assert all(torch.isfinite(loss) for loss in out.losses.values())


def test_state_dict_holds_only_the_projections() -> None:
    assert sorted(make(code_bits=8).state_dict()) == ["proj_in.bias", "proj_in.weight", "proj_out.bias", "proj_out.weight"]


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="entropy_group_bits"):
        BinarySphericalQuantizer.Params(code_bits=18)
    with pytest.raises(ValueError, match="does not divide"):
        BinarySphericalQuantizer.Params(code_bits=10, entropy_group_bits=4)
