"""The ``model`` section: the tokenizer assembled from registered components."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnipipe.spec.base import PositiveInt, StrictModel
from omnipipe.spec.component import AttentionSpec, PatchifierSpec, QuantizerSpec


class StackSpec(StrictModel):
    """A transformer stack: spatial attention blocks, then temporal ones (the decoder runs them mirrored)."""

    width: PositiveInt
    num_heads: PositiveInt
    spatial: list[AttentionSpec] = Field(min_length=1)
    temporal: list[AttentionSpec] = Field(default_factory=list)
    mlp: Literal["swiglu", "geglu", "gelu"] = "swiglu"
    mlp_ratio: float = Field(default=4.0, gt=0)
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    dropout: float = Field(default=0.0, ge=0, lt=1)


class ModelSpec(StrictModel):
    """Patchifier → encoder → quantizer (bottleneck) → decoder → unpatchify."""

    in_channels: PositiveInt = 3
    patchifier: PatchifierSpec
    encoder: StackSpec
    quantizer: QuantizerSpec
    decoder: StackSpec
