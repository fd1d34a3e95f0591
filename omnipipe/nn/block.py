"""Pre-norm residual transformer block around any registered attention kind."""
from __future__ import annotations

import torch
from torch import nn

from omnipipe.nn.mlp import Mlp, MlpKind
from omnipipe.nn.norm import NormKind, make_norm
from omnipipe.nn.stream_state import BlockState


class Block(nn.Module):
    """``x + drop(attn(norm(x)))`` then ``x + drop(mlp(norm(x)))`` on (B, T, H, W, D) tokens.

    An attention kind with an ``encode_position(x)`` method (e.g. a conv position encoding) gets to
    change the block input first; one with ``kv_from_block_input`` set gets the un-normalised input
    as ``kv_input`` for its keys and values. ``mlp_norm`` (default: ``norm``), ``norm_eps``, ``mlp_bias`` and
    ``mlp_hidden`` are the released OmniTokenizer's variations. With a ``BlockState`` the frames continue a
    stream: the conv position encoding and a cached attention read the state (``omnipipe.nn.streaming``).
    """

    def __init__(
        self,
        attention: nn.Module,
        dim: int,
        mlp: MlpKind,
        mlp_ratio: float,
        norm: NormKind,
        dropout: float,
        mlp_norm: NormKind | None = None,
        norm_eps: float = 1e-6,
        mlp_bias: bool = True,
        mlp_hidden: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, dim, norm_eps)
        self.attn = attention
        self.norm2 = make_norm(norm if mlp_norm is None else mlp_norm, dim, norm_eps)
        self.mlp = Mlp(dim, mlp_ratio, mlp, dropout, bias=mlp_bias, hidden=mlp_hidden)
        self.drop = nn.Dropout(dropout)
        self.has_position_encoding = hasattr(attention, "encode_position")
        self.kv_from_block_input = bool(getattr(attention, "kv_from_block_input", False))

    def forward(self, x: torch.Tensor, state: BlockState | None = None) -> torch.Tensor:
        """(B, T, H, W, D) → same."""
        conv = None if state is None else state.conv
        if self.has_position_encoding:
            x = self.attn.encode_position(x) if conv is None else self.attn.encode_position(x, conv)
        cache = {} if state is None or state.kv is None else {"cache": state.kv}
        if self.kv_from_block_input:
            x = x + self.drop(self.attn(self.norm1(x), kv_input=x, **cache))
        else:
            x = x + self.drop(self.attn(self.norm1(x), **cache))
        return x + self.drop(self.mlp(self.norm2(x)))
