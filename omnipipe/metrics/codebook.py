"""``codebook_usage``: share of the codebook used over the whole evaluation set, and its perplexity."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from omnipipe.metrics.base import EvalBatch
from omnipipe.nn.code_stats import usage_stats


class CodebookUsage:
    """Fraction of codes used at least once over all evaluated tokens, and exp(entropy) of their frequencies."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    per_sample_key = None
    description = "no network: share of codes used at least once over the evaluated tokens, exp(entropy) of their frequencies"

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.counts: torch.Tensor | None = None

    def update(self, batch: EvalBatch) -> None:
        if batch.quantized is None or batch.quantized.codes is None or batch.codebook_size is None:
            return None
        found = torch.bincount(batch.quantized.codes.flatten().cpu(), minlength=batch.codebook_size).double()
        self.counts = found if self.counts is None else self.counts + found
        return None

    def compute(self) -> dict[str, float]:
        """Nothing for a continuous bottleneck (no codes)."""
        if self.counts is None:
            return {}
        stats = usage_stats(self.counts)
        return {"codebook_usage": float(stats["usage"]), "codebook_perplexity": float(stats["perplexity"])}
