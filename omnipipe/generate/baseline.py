"""The independent-token baseline: every token drawn on its own from the train code frequencies.

One frequency table per segment vocabulary, shared by all positions of that segment: no position,
no neighbour, no class. What a generator adds over it is everything a token model learns beyond
unigram statistics. Its entropy (bits per token) is the cost of coding tokens without any context.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from omnipipe.generate.contract import GenerationError, TokenLayout


class IndependentTokens:
    """Unigram code frequencies of the train tokens (codes layouts only)."""

    def __init__(self, layout: TokenLayout, train_tokens: np.ndarray) -> None:
        if layout.kind != "codes":
            raise GenerationError("the independent-token baseline needs integer codes")
        self.layout = layout
        shared = np.asarray(train_tokens, dtype=np.int64) + layout.vocab_offsets().numpy()  # (N, L) in the shared table
        counts = np.bincount(shared.ravel(), minlength=layout.vocab_size).astype(np.float64)
        self.starts = layout.vocab_offsets().numpy()
        self.sizes = layout.vocab_sizes().numpy()
        # (L, V): each position's segment frequencies, zero elsewhere; a segment never seen is uniform
        table = np.zeros((layout.length, layout.vocab_size))
        for position, (start, size) in enumerate(zip(self.starts, self.sizes)):
            part = counts[start : start + size]
            table[position, start : start + size] = part / part.sum() if part.sum() else 1.0 / size
        self.probs = torch.from_numpy(table)

    def entropy_bits(self) -> float:
        """Mean entropy per token of the frequencies, in bits."""
        p = self.probs
        return float(-(torch.xlogy(p, p).sum(-1)).mean()) / math.log(2)

    def cross_entropy_bits(self, tokens: np.ndarray) -> float:
        """Mean −log₂ p(token) of ``tokens`` (N, L) under the frequencies (∞ for a code never seen in train)."""
        shared = torch.from_numpy(np.asarray(tokens, dtype=np.int64) + self.starts)
        p = self.probs.gather(1, shared.T).T  # (N, L)
        return float(-torch.log2(p).mean())

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Codes (count, L), each drawn independently with ``generator``."""
        drawn = torch.multinomial(self.probs.float(), count, replacement=True, generator=generator)  # (L, count)
        return drawn.T - torch.from_numpy(self.starts)
