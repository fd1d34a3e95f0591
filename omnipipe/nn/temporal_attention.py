"""Temporal attention kind ``causal``: each spatial position attends to itself in the current and earlier frames."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field

from omnipipe.nn.alibi import alibi_bias
from omnipipe.nn.attention import Attention, AttentionOptions
from omnipipe.nn.position_conv import PegOrder
from omnipipe.nn.rope import temporal_angles


class CausalAttention(Attention):
    """Causal self-attention along time per spatial position, positions by 1-D RoPE over frames (unless ``rope: false``)."""

    class Params(AttentionOptions):
        rope: bool = Field(default=True, description="1-D RoPE over the frame index")
        alibi: bool = Field(default=False, description="add ALiBi's per-head penalty −slope·|Δt| to the scores")
        peg_order: PegOrder = Field(
            default="grid",
            description="token order the conv position encoding sees; reference_temporal reproduces the released "
            "OmniTokenizer's temporal blocks (see omnipipe.nn.position_conv)",
        )

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads, params, peg_order=params.peg_order)
        if params.rope and self.head_dim % 2:
            raise ValueError(f"temporal RoPE needs an even head_dim, got {self.head_dim}")
        self.params = params

    def angles(self, t: int, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        if not self.params.rope:
            return None
        return temporal_angles(t, self.head_dim, device)[:, None, None, None]  # (T, 1, 1, 1, hd/2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, h, w = q.shape[:4]
        q, k, v = (rearrange(a, "b t h w n d -> (b h w) n t d") for a in (q, k, v))
        if self.params.alibi:
            bias = alibi_bias(self.num_heads, t, q.device, q.dtype)  # (heads, T, T)
            causal = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
            mask = bias.masked_fill(~causal, float("-inf"))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)  # (B·H·W, heads, T, hd)
        return rearrange(out, "(b h w) n t d -> b t h w n d", b=b, h=h)

    def forward(self, x: torch.Tensor, kv_input: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H, W, D) → same; with one frame each token only sees itself, so only v is computed."""
        if x.shape[1] == 1:
            bias = None if self.qkv.bias is None else self.qkv.bias[2 * self.dim :]
            v = F.linear(x if kv_input is None else kv_input, self.qkv.weight[2 * self.dim :], bias)
            return self.proj(v)
        return super().forward(x, kv_input)
