"""Drawing tokens from logits: temperature, top-k, top-p (nucleus), one ``torch.Generator`` as the only randomness."""
from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from omnipipe.generate.contract import GenerationError, class_ids
from omnipipe.generate.guidance import GuidanceSettings


class TokenSampling(GuidanceSettings):
    """Settings for drawing codes from logits (plus classifier-free guidance)."""

    temperature: float = Field(default=1.0, gt=0, description="logits are divided by it")
    top_k: int = Field(default=0, ge=0, description="keep the k most likely codes (0: all)")
    top_p: float = Field(default=1.0, gt=0, le=1, description="keep the smallest set of codes with this much mass")


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or in float64 when it already is (losses and probabilities never in bf16)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """``logits`` (..., V) with everything outside the top-k and the top-p nucleus set to -inf."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(-1)
        outside = probs.cumsum(-1) - probs >= top_p  # the more likely codes already hold top_p of the mass
        logits = logits.masked_fill(torch.zeros_like(outside).scatter(-1, order, outside), float("-inf"))
    return logits


def sampling_log_probs(logits: torch.Tensor, settings: TokenSampling) -> torch.Tensor:
    """Log-probabilities (..., V) of the distribution codes are drawn from: temperature, then top-k/top-p."""
    return filter_logits(at_least_fp32(logits) / settings.temperature, settings.top_k, settings.top_p).log_softmax(-1)


def draw_codes(log_probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row of ``log_probs`` (..., V) → (...,) int64, drawn with ``generator``."""
    flat = log_probs.exp().reshape(-1, log_probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(log_probs.shape[:-1])


def draw(logits: torch.Tensor, settings: TokenSampling, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row of ``logits`` (..., V) under ``settings``."""
    return draw_codes(sampling_log_probs(logits, settings), generator)


def sampling_start(
    model: torch.nn.Module, labels: torch.Tensor, prefix: torch.Tensor | None, settings: dict[str, Any]
) -> tuple[Any, int, torch.Tensor]:
    """What every token sampler checks first: the validated settings, the prefix length, and the class
    indices on the model's device (the conditional rows, then as many null-class rows when guided)."""
    s = model.Sampling.model_validate(settings)
    layout = model.layout
    if s.guided and not layout.conditional:
        raise GenerationError("classifier-free guidance needs a class-conditional model (cfg_scale must be 1)")
    given = 0 if prefix is None else prefix.shape[1]
    if given >= layout.length:
        raise GenerationError(f"a prefix of {given} tokens leaves nothing to generate (sequence: {layout.length})")
    classes = class_ids(labels.to(model.positions.device), layout)
    if s.guided:
        classes = torch.cat([classes, torch.full_like(classes, layout.null_class)])
    return s, given, classes
