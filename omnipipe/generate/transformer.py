"""The token transformer both builtin generators share (LlamaGen-style), readable top to bottom.

    [class] x₀ x₁ … → embedding → depth × (RMSNorm → attention with 3-D RoPE → + ; RMSNorm → SwiGLU → +)
                    → RMSNorm → linear head → logits (B, N, V)

Attention is causal (``ar``) or bidirectional (``masked``). Each token carries its (t, h, w) position
(``TokenLayout.positions``); RoPE rotates a quarter of each head's channel pairs by t and three
eighths each by h and w. The class token sits at no rotation (angle 0). Decoding can run against a
``KVCache`` so each new token costs one position, not the whole prefix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.nn.linear import Linear
from omnipipe.nn.mlp import Mlp
from omnipipe.nn.norm import RMSNorm
from omnipipe.nn.rope import apply_rope, rope_angles
from omnipipe.nn.stack import init_weights


class TransformerParams(BaseModel):
    """The backbone's size; shared by the builtin generators' ``Params``."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=256, gt=0)
    depth: int = Field(default=6, gt=0)
    num_heads: int = Field(default=8, gt=0)
    mlp_ratio: float = Field(default=4.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    class_dropout: float = Field(default=0.1, ge=0, le=1, description="training: label replaced by the null class")


def axial_angles(positions: torch.Tensor, head_dim: int) -> torch.Tensor:
    """RoPE angles (N, head_dim // 2) for (t, h, w) ``positions`` (N, 3): pairs split 1/4 : 3/8 : 3/8."""
    pairs = head_dim // 2
    spatial = 3 * pairs // 8
    counts = (pairs - 2 * spatial, spatial, spatial)
    parts = [rope_angles(positions[:, axis], 2 * count) for axis, count in enumerate(counts) if count]
    return torch.cat(parts, dim=-1)


class KVCache:
    """Keys and values of every layer for decoding, (B, heads, max_len, head_dim) each, filled left to right."""

    def __init__(self, depth: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * depth
        self.values: list[torch.Tensor | None] = [None] * depth
        self.length = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append (B, heads, n, hd) keys and values at the current length; every key and value so far."""
        start = self.length
        end = start + k.shape[2]
        if self.keys[layer] is None or self.keys[layer].shape[2] < end:
            grown = max(end, 2 * start)
            for store in (self.keys, self.values):
                old = store[layer]
                new = k.new_empty((*k.shape[:2], grown, k.shape[3]))
                if old is not None:
                    new[:, :, :start] = old[:, :, :start]
                store[layer] = new
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, count: int) -> None:
        self.length += count


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads or (dim // num_heads) % 2:
            raise ValueError(f"width {dim} / num_heads {num_heads} must give an even head dim")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = Linear(dim, 3 * dim, bias=False)
        self.proj = Linear(dim, dim, bias=False)

    def forward(
        self, x: torch.Tensor, angles: torch.Tensor, causal: bool, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        """(B, N, D) → (B, N, D); ``angles`` (N, head_dim // 2) for these N tokens."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).unbind(-3)  # (B, N, heads, hd)
        rotation = angles[:, None]  # (N, 1, hd/2)
        q, k, v = (a.transpose(1, 2) for a in (apply_rope(q, rotation), apply_rope(k, rotation), v))  # (B, heads, N, hd)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # Queries that are the last N of the keys: causal means a lower-right triangle; one query sees all keys.
        mask = None
        if causal and q.shape[2] > 1:
            offset = k.shape[2] - q.shape[2]
            mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=x.device).tril(offset)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, hd)
        return self.proj(out.transpose(1, 2).flatten(-2))


class TransformerBlock(nn.Module):
    def __init__(self, params: TransformerParams) -> None:
        super().__init__()
        self.norm1 = RMSNorm(params.width, eps=1e-6)
        self.attn = SelfAttention(params.width, params.num_heads)
        self.norm2 = RMSNorm(params.width, eps=1e-6)
        self.mlp = Mlp(params.width, params.mlp_ratio, "swiglu", params.dropout)
        self.drop = nn.Dropout(params.dropout)

    def forward(self, x: torch.Tensor, angles: torch.Tensor, causal: bool, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), angles, causal, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class TokenTransformer(nn.Module):
    """Class token + token embeddings → blocks → logits over ``vocab_out`` entries."""

    def __init__(
        self, params: TransformerParams, vocab_in: int, vocab_out: int, class_count: int, learned_positions: int = 0
    ) -> None:
        super().__init__()
        self.params = params
        self.token_embedding = nn.Embedding(vocab_in, params.width)
        # Bidirectional models see runs of identical mask tokens, where relative (RoPE) positions alone
        # barely tell places apart: they also add a learned embedding per sequence index (as MaskGIT does).
        self.position_embedding = nn.Embedding(learned_positions, params.width) if learned_positions else None
        self.class_embedding = nn.Embedding(class_count, params.width)
        self.blocks = nn.ModuleList(TransformerBlock(params) for _ in range(params.depth))
        self.norm = RMSNorm(params.width, eps=1e-6)
        self.head = Linear(params.width, vocab_out, bias=False)
        self.drop = nn.Dropout(params.dropout)
        init_weights(self)
        for embedding in (self.token_embedding, self.class_embedding, self.position_embedding):
            if embedding is not None:
                nn.init.trunc_normal_(embedding.weight, std=0.02)
        nn.init.zeros_(self.head.weight)  # every code equally likely at the start

    @property
    def head_dim(self) -> int:
        return self.params.width // self.params.num_heads

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        classes: torch.Tensor | None,
        causal: bool,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits (B, N', V) for the class token (when ``classes`` (B,) is given) followed by ``tokens`` (B, N)
        at ``positions`` (N, 3); N' = N + 1 with the class token, else N."""
        x = self.token_embedding(tokens)  # (B, N, D)
        if self.position_embedding is not None:  # only with whole sequences (no cache)
            x = x + self.position_embedding.weight[: x.shape[1]]
        angles = axial_angles(positions, self.head_dim).to(x.device)  # (N, hd/2)
        if classes is not None:
            x = torch.cat([self.class_embedding(classes)[:, None], x], dim=1)  # (B, 1 + N, D)
            angles = torch.cat([angles.new_zeros(1, angles.shape[1]), angles])
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, angles, causal, cache, layer)
        if cache is not None:
            cache.advance(x.shape[1])
        return self.head(self.norm(x))
