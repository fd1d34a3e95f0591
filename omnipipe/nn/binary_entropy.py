"""Entropy terms of a soft assignment to an implicit binary codebook, in fp32.

When the probability of a code factorises over its bits, p(c | x) = prod_k p_k(c_k | x) with
p_k(1 | x) = sigmoid(l_k), the per-sample entropy is exactly the sum of the bits' binary entropies,
computed from log-sigmoids (never log(0), never exp overflow). The codebook (batch-average)
entropy H(E_x[p(c | x)]) does not factorise; it is computed exactly within groups of ``group_bits``
bits (2**group_bits sub-codes each) and summed over groups: exact when one group holds every bit,
the BSQ paper's factorised approximation (an upper bound) with smaller groups.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


MAX_GROUP_BITS = 16


def entropy_group_bits(code_bits: int, group_bits: int | None) -> int:
    """The bits per exact-entropy group (all ``code_bits`` when None); ValueError if it cannot work."""
    group = group_bits or code_bits
    if group > MAX_GROUP_BITS:
        raise ValueError(
            f"exact codebook entropy over {group} bits needs 2**{group} probabilities per token; "
            f"set entropy_group_bits to at most {MAX_GROUP_BITS} (a divisor of code_bits)"
        )
    if code_bits % group:
        raise ValueError(f"entropy_group_bits {group} does not divide code_bits {code_bits}")
    return group


def binary_entropy_terms(logits: torch.Tensor, group_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean per-sample entropy, codebook entropy) in nats from per-bit log-odds ``logits`` (N, K).

    ``group_bits`` must divide K. Memory: N × (K / group_bits) × 2**group_bits floats.
    """
    logits = logits.float()
    n, k = logits.shape
    if k % group_bits:
        raise ValueError(f"group_bits {group_bits} does not divide {k} bits")
    log_one, log_zero = F.logsigmoid(logits), F.logsigmoid(-logits)  # (N, K), finite for finite logits
    per_sample = -(log_one.exp() * log_one + log_zero.exp() * log_zero).sum(-1).mean()
    table = (torch.arange(2**group_bits, device=logits.device)[:, None] >> torch.arange(group_bits, device=logits.device)) & 1
    table = table.float()  # (2^g, g): bit j of sub-code c
    groups = k // group_bits
    log_one = log_one.view(n, groups, group_bits)
    log_zero = log_zero.view(n, groups, group_bits)
    log_q = log_one @ table.T + log_zero @ (1 - table).T  # (N, G, 2^g): log p(sub-code | x)
    average = log_q.exp().mean(0)  # (G, 2^g)
    codebook = -torch.xlogy(average, average).sum()
    return per_sample, codebook
