"""Codebook statistics every quantizer reports: ``usage`` and ``perplexity`` of its codes."""
from __future__ import annotations

import torch


def usage_stats(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """``usage`` (fraction of codes used) and ``perplexity`` (exp entropy) of code counts (K,)."""
    probs = counts / counts.sum()
    entropy = -torch.xlogy(probs, probs).sum()
    return {"usage": (counts > 0).float().mean(), "perplexity": entropy.exp()}


def code_usage_stats(codes: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """``usage_stats`` of integer ``codes`` of any shape drawn from ``codebook_size`` codes."""
    return usage_stats(torch.bincount(codes.flatten(), minlength=codebook_size).double())
