"""Classifier-free guidance: the one definition every generator uses.

    guided = u + s · (c − u)

on the *whole* output (all logits of a token model; all channels of a latent model), with ``c`` the
conditional and ``u`` the unconditional (null-class) prediction. ``s = 1`` is the plain conditional
model, ``s = 0`` the unconditional one. ``cfg_schedule: linear`` is OmniTokenizer's growing guidance,
``(1 + t)·c − t·u`` with ``t`` rising linearly over the generated tokens: the i-th of ``n`` generated
tokens (or steps) gets ``s_i = 1 + (s − 1)·(i + 1)/n``, so the last one gets ``s``.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class GuidanceSettings(BaseModel):
    """Sampling settings every guided generator accepts (subclass it for more)."""

    model_config = ConfigDict(extra="forbid")

    cfg_scale: float = Field(default=1.0, ge=0, description="s in u + s·(c − u); 1: no guidance, 0: unconditional")
    cfg_schedule: Literal["constant", "linear"] = Field(
        default="constant", description="constant: s everywhere; linear: from ~1 up to s over the generated tokens"
    )

    @property
    def guided(self) -> bool:
        """Whether the unconditional branch is needed at all."""
        return self.cfg_scale != 1.0


def guide(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """``u + s·(c − u)``; ``scale`` a number or a tensor broadcastable to the outputs."""
    return unconditional + scale * (conditional - unconditional)


def guidance_scale(settings: GuidanceSettings, index: int, count: int) -> float:
    """The scale for the ``index``-th of ``count`` generated tokens (or steps) under ``settings``."""
    if settings.cfg_schedule == "constant":
        return settings.cfg_scale
    return 1.0 + (settings.cfg_scale - 1.0) * (index + 1) / count
