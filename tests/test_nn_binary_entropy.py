"""The binary-code entropy terms shared by lookup-free quantizers (public: ``omnipipe.binary_entropy_terms``)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

import omnipipe

LN2 = math.log(2)


def test_terms_match_the_brute_force_distribution_over_all_codes() -> None:
    torch.manual_seed(0)
    logits = torch.randn(32, 4, dtype=torch.float64) * 2
    codes = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=torch.float64)  # (16, 4)
    log_p = codes @ torch.nn.functional.logsigmoid(logits).T + (1 - codes) @ torch.nn.functional.logsigmoid(-logits).T
    p = log_p.T.exp()  # (32, 16): a factorised distribution over the 16 codes
    per_sample, codebook = omnipipe.binary_entropy_terms(logits, group_bits=4)
    average = p.mean(0)
    assert float(per_sample) == pytest.approx(float(-(p * p.log()).sum(-1).mean()), abs=1e-5)
    assert float(codebook) == pytest.approx(float(-(average * average.log()).sum()), abs=1e-5)


def test_grouped_codebook_entropy_is_the_factorised_upper_bound() -> None:
    """Two perfectly correlated bits: exact codebook entropy ln 2, factorised (groups of 1) 2·ln 2."""
    h = torch.tensor([[50.0, 50.0], [-50.0, -50.0]])
    assert float(omnipipe.binary_entropy_terms(h, group_bits=2)[1]) == pytest.approx(LN2, rel=1e-6)
    assert float(omnipipe.binary_entropy_terms(h, group_bits=1)[1]) == pytest.approx(2 * LN2, rel=1e-6)
    with pytest.raises(ValueError, match="group_bits 3 does not divide 2 bits"):
        omnipipe.binary_entropy_terms(h, group_bits=3)


def test_code_usage_stats_on_a_constructed_case() -> None:
    stats = omnipipe.code_usage_stats(torch.tensor([[0, 0], [1, 2]]), codebook_size=8)
    probs = torch.tensor([0.5, 0.25, 0.25])
    assert float(stats["usage"]) == 3 / 8
    assert float(stats["perplexity"]) == pytest.approx(math.exp(float(-(probs * probs.log()).sum())))
