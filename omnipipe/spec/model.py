"""The ``model`` section: the tokenizer assembled from registered components."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from omnipipe.spec.base import PositiveInt, Real, StrictModel
from omnipipe.spec.component import AttentionSpec, PatchifierSpec, QuantizerSpec
from omnipipe.spec.problems import SpecValueError


class StackSpec(StrictModel):
    """A transformer stack: spatial attention blocks, then temporal ones (the decoder runs them mirrored)."""

    width: PositiveInt
    num_heads: PositiveInt
    spatial: list[AttentionSpec] = Field(min_length=1)
    temporal: list[AttentionSpec] = Field(default_factory=list)
    mlp: Literal["swiglu", "geglu", "gelu"] = "swiglu"
    mlp_ratio: Real = Field(default=4.0, gt=0)
    norm: Literal["layernorm", "layernorm_nobias", "rmsnorm"] = "layernorm"
    dropout: Real = Field(default=0.0, ge=0, lt=1)
    # the released OmniTokenizer's variations (docs/reference.md); the defaults are omnipipe's design
    mlp_norm: Literal["layernorm", "layernorm_nobias", "rmsnorm"] | None = None  # pre-MLP norm; None: `norm`
    norm_eps: Real = Field(default=1e-6, gt=0)
    mlp_bias: bool = True
    mlp_hidden: PositiveInt | None = None  # hidden width of the MLP; None: from mlp_ratio
    final_norm: Literal["stack", "per_group"] = "stack"  # per_group: a norm after the spatial and after the temporal blocks

    @model_validator(mode="after")
    def _head_dim(self) -> StackSpec:
        if self.width % self.num_heads:
            raise SpecValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}", ("num_heads",))
        if (self.width // self.num_heads) % 4:
            raise SpecValueError(
                f"head dim width/num_heads = {self.width // self.num_heads} must be a multiple of 4 (2-D RoPE)",
                ("num_heads",),
            )
        return self


class ModelSpec(StrictModel):
    """Patchifier → encoder → quantizer (bottleneck) → decoder → unpatchify."""

    in_channels: PositiveInt = 3
    patchifier: PatchifierSpec
    encoder: StackSpec
    quantizer: QuantizerSpec
    decoder: StackSpec
