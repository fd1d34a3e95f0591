"""What a layer carries from one chunk of a video to the next when the video is encoded chunk by chunk.

A causal attention layer keeps the keys and values of the frames it has seen (``KVCache``); a
causal conv position encoding keeps the last two frames of its input (``ConvState``). Both are
per layer and per video; ``omnipipe.nn.streaming`` creates and feeds them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class KVCache:
    """Keys and values of the most recent frames a causal attention layer has seen, in attention layout.

    ``keys``/``values``: (B·H·W, heads, kept, head_dim) or None before the first chunk; ``seen``: how many
    frames went through the layer (the next frame's index).
    """

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None
    seen: int = 0

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept keys and values followed by ``keys``/``values`` (B·H·W, heads, t, hd) of the next t frames."""
        if self.keys is not None:
            keys, values = torch.cat([self.keys, keys], dim=-2), torch.cat([self.values, values], dim=-2)
        return keys, values

    def store(self, keys: torch.Tensor, values: torch.Tensor, new_frames: int, keep: int | None) -> None:
        """Keep the last ``keep`` frames of ``keys``/``values`` (all when None), after ``new_frames`` more were seen.

        A trimmed cache is copied, so the frames it dropped are freed.
        """
        if keep is not None and keys.shape[-2] > keep:
            keys, values = keys[..., keys.shape[-2] - keep :, :].clone(), values[..., values.shape[-2] - keep :, :].clone()
        self.keys, self.values = keys, values
        self.seen += new_frames

    @property
    def nbytes(self) -> int:
        return 0 if self.keys is None else self.keys.nbytes + self.values.nbytes


@dataclass
class ConvState:
    """The last frames (B, ≤ 2, H, W, D) a causal 3×3×3 conv position encoding has read (None: none yet)."""

    frames: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.frames is None else self.frames.nbytes


@dataclass
class BlockState:
    """A block's state across chunks: its attention's cache (None: per-frame attention) and its conv state."""

    kv: KVCache | None = None
    conv: ConvState | None = None

    @property
    def nbytes(self) -> int:
        return sum(part.nbytes for part in (self.kv, self.conv) if part is not None)


@dataclass
class StackState:
    """The states of a stack's blocks, in block order."""

    blocks: list[BlockState] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self.blocks)
