"""Temporal attention kind ``causal``: each spatial position attends to itself in the current and earlier frames."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from pydantic import Field

from omnipipe.nn.alibi import alibi_bias
from omnipipe.nn.attention import Attention, AttentionOptions
from omnipipe.nn.linear import linear
from omnipipe.nn.position_conv import PegOrder
from omnipipe.nn.rope import temporal_angles
from omnipipe.nn.stream_state import KVCache


class CausalAttention(Attention):
    """Causal self-attention along time per spatial position, positions by 1-D RoPE over frames (unless ``rope: false``).

    With ``max_context: N`` a frame attends to itself and the N − 1 frames before it only, so a video
    encoded chunk by chunk (``omnipipe.nn.streaming``) keeps N − 1 frames of keys and values per layer
    however long it is. Given a ``KVCache``, the frames continue a stream: they attend to the cached
    frames too, and their keys and values are added to the cache.
    """

    class Params(AttentionOptions):
        rope: bool = Field(default=True, description="1-D RoPE over the frame index")
        alibi: bool = Field(default=False, description="add ALiBi's per-head penalty −slope·|Δt| to the scores")
        peg_order: PegOrder = Field(
            default="grid",
            description="token order the conv position encoding sees; reference_temporal reproduces the released "
            "OmniTokenizer's temporal blocks (see omnipipe.nn.position_conv)",
        )
        max_context: int | None = Field(
            default=None,
            ge=1,
            description="a frame attends to at most this many latent frames (itself and the ones just before); "
            "bounds the memory of streaming encode/decode; None: every earlier frame",
        )

    takes_kv_cache = True  # forward(x, cache=KVCache()) continues a stream

    def __init__(self, params: Params, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads, params, peg_order=params.peg_order)
        if params.rope and self.head_dim % 2:
            raise ValueError(f"temporal RoPE needs an even head_dim, got {self.head_dim}")
        self.params = params

    def angles(self, t: int, h: int, w: int, device: torch.device, start: int = 0) -> torch.Tensor | None:
        if not self.params.rope:
            return None
        return temporal_angles(t, self.head_dim, device, start)[:, None, None, None]  # (T, 1, 1, 1, hd/2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, h, w = q.shape[:4]
        q, k, v = (rearrange(a, "b t h w n d -> (b h w) n t d") for a in (q, k, v))
        out = self.attend_frames(q, k, v)  # (B·H·W, heads, T, hd)
        return rearrange(out, "(b h w) n t d -> b t h w n d", b=b, h=h)

    def attend_frames(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Queries (N, heads, Tq, hd), the last Tq of the Tk frames of keys and values (N, heads, Tk, hd) → (N, heads, Tq, hd)."""
        tq, tk = q.shape[-2], k.shape[-2]
        if not self.params.alibi and self.params.max_context is None and tq == tk:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        allowed = torch.ones(tk, tk, dtype=torch.bool, device=q.device).tril()  # (Tk, Tk): key j ≤ query i
        if self.params.max_context is not None:
            allowed = allowed.triu(1 - self.params.max_context)  # and i − j < max_context
        mask = allowed[tk - tq :]  # (Tq, Tk)
        if self.params.alibi:
            bias = alibi_bias(self.num_heads, tk, q.device, q.dtype)[:, tk - tq :]  # (heads, Tq, Tk)
            mask = bias.masked_fill(~mask, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)

    def forward(
        self, x: torch.Tensor, kv_input: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> torch.Tensor:
        """(B, T, H, W, D) → same; with one frame each token only sees itself, so only v is computed.

        ``cache``: ``x`` holds the frames that follow the cached ones (see the class doc).
        """
        if cache is not None:
            return self._continue(x, kv_input, cache)
        if x.shape[1] == 1:
            bias = None if self.qkv.bias is None else self.qkv.bias[2 * self.dim :]
            v = linear(x if kv_input is None else kv_input, self.qkv.weight[2 * self.dim :], bias)
            return self.proj(v)
        return super().forward(x, kv_input)

    def _continue(self, x: torch.Tensor, kv_input: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        b, t, h, w = x.shape[:4]
        q, k, v = self.project(x, kv_input, start=cache.seen)
        q, k, v = (rearrange(a, "b t h w n d -> (b h w) n t d") for a in (q, k, v))
        keys, values = cache.extend(k, v)  # (B·H·W, heads, kept + T, hd)
        out = self.attend_frames(q, keys, values)
        keep = None if self.params.max_context is None else self.params.max_context - 1
        cache.store(keys, values, t, keep)
        return self.proj(rearrange(out, "(b h w) n t d -> b t h w (n d)", b=b, h=h))
