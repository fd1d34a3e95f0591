"""LFQ: the quantizer contract, straight-through gradients, codes, closed-form entropy, reduced precision."""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest
import torch

import omnipipe

try:
    from omnipipe_lfq import LookupFreeQuantizer
except ModuleNotFoundError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from omnipipe_lfq import LookupFreeQuantizer

LN2 = math.log(2)


def make(dim: int = 16, identity: bool = False, **params: object) -> LookupFreeQuantizer:
    torch.manual_seed(0)
    lfq = LookupFreeQuantizer(LookupFreeQuantizer.Params(**params), dim=dim)
    if identity:  # proj_in = identity: tests place projected latents directly
        with torch.no_grad():
            lfq.proj_in.weight.copy_(torch.eye(lfq.code_bits, dim))
            lfq.proj_in.bias.zero_()
    return lfq


def reference_entropies(h: torch.Tensor, scale: float, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MAGVIT-v2's definition by brute force over all 2^K codes: softmax(-||h - c||² / t), float64."""
    k = h.shape[-1]
    corners = torch.tensor(list(itertools.product([-scale, scale], repeat=k)), dtype=torch.float64)  # (2^K, K)
    log_p = torch.log_softmax(-torch.cdist(h.double(), corners).square() / temperature, dim=-1)  # (N, 2^K)
    per_sample = -(log_p.exp() * log_p).sum(-1).mean()
    average = log_p.exp().mean(0)
    return per_sample, -torch.xlogy(average, average).sum()


def test_contract_shapes_and_dtypes() -> None:
    lfq = make(dim=16, code_bits=8)
    assert lfq.codebook_size == 256
    z = torch.randn(2, 3, 4, 5, 16)
    out = lfq(z)
    assert isinstance(out, omnipipe.QuantizerOutput) and isinstance(lfq, omnipipe.Quantizer)
    assert out.z_q.shape == z.shape and out.z_q.dtype == torch.float32
    assert out.codes.shape == (2, 3, 4, 5) and out.codes.dtype == torch.int64
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < 256
    assert set(out.losses) == {"commitment", "entropy"}
    assert all(loss.shape == () and loss.requires_grad for loss in out.losses.values())
    assert {"usage", "perplexity"} <= set(out.stats)
    assert 0 < float(out.stats["usage"]) <= 1 and 1 <= float(out.stats["perplexity"]) <= 256


def test_codes_are_sign_bits_and_decode_inverts_them() -> None:
    lfq = make(dim=3, identity=True, code_bits=3, code_scale=0.5)
    h = torch.tensor([[0.3, -0.2, 0.1], [-1.0, -2.0, -3.0], [1.0, 2.0, 3.0], [-0.1, 0.4, -0.2]])
    out = lfq(h[:, None, None, None, :])
    assert out.codes.flatten().tolist() == [1 + 4, 0, 7, 2]
    assert torch.allclose(lfq.decode_codes(out.codes), out.z_q, atol=1e-6)
    every = torch.arange(8)
    bits = (every[:, None] >> torch.arange(3)) & 1
    assert torch.allclose(lfq.decode_codes(every), lfq.proj_out((bits.float() * 2 - 1) * 0.5), atol=1e-6)
    big = make(dim=32, code_bits=12)
    out = big(torch.randn(2, 1, 5, 5, 32))
    assert torch.allclose(big.decode_codes(out.codes), out.z_q, atol=1e-5)


def test_straight_through_gradient_reaches_input() -> None:
    lfq = make(dim=8, code_bits=8)
    z = torch.randn(2, 1, 4, 4, 8, requires_grad=True)
    lfq(z).z_q.square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # the sign step passes the gradient through unchanged
    ident = make(dim=4, identity=True, code_bits=4)
    h = torch.randn(1, 1, 1, 3, 4, requires_grad=True)
    out = ident(h)
    (out.z_q * 0 + out.z_q).sum().backward()
    assert torch.allclose(h.grad[0, 0, 0], ident.proj_out.weight.sum(0).expand(3, 4))
    # and the entropy term moves the encoder too
    z.grad = None
    lfq(z).losses["entropy"].backward()
    assert z.grad.abs().sum() > 0


def test_entropy_matches_the_softmax_over_all_codes() -> None:
    torch.manual_seed(3)
    h = torch.randn(64, 4) * 0.7
    for scale, temperature in [(1.0, 1.0), (0.5, 0.3)]:
        lfq = make(dim=4, identity=True, code_bits=4, code_scale=scale, temperature=temperature)
        per_sample, codebook = omnipipe.binary_entropy_terms(4 * scale / temperature * h, group_bits=4)
        want_sample, want_codebook = reference_entropies(h, scale, temperature)
        assert torch.allclose(per_sample.double(), want_sample, atol=1e-5)
        assert torch.allclose(codebook.double(), want_codebook, atol=1e-5)
        out = lfq(h[:, None, None, None, :])
        expected = 0.1 * (want_sample - want_codebook)
        assert torch.allclose(out.losses["entropy"].double(), expected, atol=1e-5)


def test_entropy_closed_forms() -> None:
    bits = 3
    # uniform: z = 0 → every sample uniform over 2^K codes: both terms K·ln 2, the penalty 0 (γ = 1)
    lfq = make(dim=bits, identity=True, code_bits=bits, entropy_weight=1.0)
    out = lfq(torch.zeros(5, 1, 1, 1, bits))
    assert math.isclose(float(out.stats["sample_entropy"]), bits * LN2, rel_tol=1e-6)
    assert math.isclose(float(out.stats["codebook_entropy"]), bits * LN2, rel_tol=1e-6)
    assert abs(float(out.losses["entropy"].detach())) < 1e-6
    # degenerate: every token confidently on the same code → both terms 0
    out = lfq(torch.full((6, 1, 1, 1, bits), 50.0))
    assert float(out.stats["sample_entropy"]) < 1e-12 and float(out.stats["codebook_entropy"]) < 1e-12
    assert float(out.stats["usage"]) == 1 / 8 and float(out.stats["perplexity"]) == 1.0
    # ideal: each of the 2^K codes once, confidently → per-sample 0, codebook K·ln 2, penalty −K·ln 2
    corners = torch.tensor(list(itertools.product([-50.0, 50.0], repeat=bits)))
    out = lfq(corners[:, None, None, None, :])
    assert float(out.stats["sample_entropy"]) < 1e-12
    assert math.isclose(float(out.stats["codebook_entropy"]), bits * LN2, rel_tol=1e-6)
    assert math.isclose(float(out.losses["entropy"].detach()), -bits * LN2, rel_tol=1e-6)
    assert float(out.stats["usage"]) == 1.0 and math.isclose(float(out.stats["perplexity"]), 8, rel_tol=1e-6)
    # one bit at log-odds l: the binary entropy of sigmoid(l)
    p = torch.sigmoid(torch.tensor(4 * 0.3))
    per_sample, _ = omnipipe.binary_entropy_terms(torch.tensor([[4 * 0.3]]), group_bits=1)
    assert math.isclose(float(per_sample), float(-(p * p.log() + (1 - p) * (1 - p).log())), rel_tol=1e-6)


def test_grouped_codebook_entropy_runs_in_groups() -> None:
    lfq = make(dim=8, code_bits=8, entropy_group_bits=4)
    assert torch.isfinite(lfq(torch.randn(2, 1, 4, 4, 8)).losses["entropy"])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_losses_are_finite_and_codes_match_fp32(dtype: torch.dtype) -> None:
    lfq = make(dim=16, code_bits=8, temperature=0.01)  # sharp assignment: large log-odds
    torch.manual_seed(2)
    for magnitude in [1e-3, 1.0, 300.0]:
        z = (torch.randn(4, 1, 8, 8, 16) * magnitude).to(dtype)
        reference = lfq(z.float())
        with torch.autocast("cpu", dtype=dtype):
            out = lfq(z)
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
        LookupFreeQuantizer.Params(code_bits=18)
    with pytest.raises(ValueError, match="does not divide"):
        LookupFreeQuantizer.Params(code_bits=10, entropy_group_bits=4)
    assert LookupFreeQuantizer.Params(code_bits=18, entropy_group_bits=9).code_bits == 18
