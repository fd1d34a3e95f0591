"""The generator contract shared by every generator, builtin or plugin (DESIGN.md §3).

**What a generator models.** A token dataset (``omnipipe encode-tokens``) turns each clip into one
flat *sequence* of ``layout.length`` tokens: integer codes ``(L,)`` of a VQ-like tokenizer or
continuous latents ``(L, C)`` of a KL-like one. ``TokenLayout`` says how the sequence is laid out:
one or more *segments*, each a grid ``(T', H', W')`` read in raster order t → h → w, concatenated.
A plain OmniTokenizer clip is one segment (``frames``); a layout of N key-frame tokens plus one
token per later frame (VTok) is two segments with their own vocabularies. Every token has a
position ``(t, h, w)`` (``layout.positions()``), which is what positional encodings use.

**How a generator is built.** ``cls(params, layout=layout)``: its own validated ``Params`` and the
layout of the token dataset it trains on (vocabulary sizes or latent channels, grids, number of
classes). ``layout.num_classes == 0`` means an unconditional model. A class-conditional model keeps
one extra *null class*, index ``layout.null_class`` (= ``num_classes``), for classifier-free
guidance; label ``-1`` (unlabelled) means the null class everywhere.

**Training.** ``losses(batch) -> {name: 0-d tensor}``: the terms the trainer sums and
back-propagates (each logged under its name); ``forward(batch)`` returns the same, so DDP can wrap
the module. The generator itself does whatever conditioning dropout it needs (e.g. the label
replaced by the null class with p = 0.1) in training mode.

**Sampling.** ``sample(labels, prefix=None, generator=None, **settings)`` returns whole sequences,
codes ``(B, L)`` int64 or latents ``(B, L, C)``: ``labels`` ``(B,)`` class indices (the null
class or -1 for unconditional samples); ``prefix`` the first ``P`` tokens given, ``(B, P)`` or
``(B, P, C)``, returned unchanged — frame prediction gives the first latent frame(s),
``P = layout.prefix_length(frames)``; ``generator`` a ``torch.Generator`` that is the only source of
randomness, so equal seeds give equal samples; ``settings`` keyword arguments validated by the
class's ``Sampling`` model (a pydantic model with ``extra="forbid"``, checked when a spec loads).
Guided generators subclass ``GuidanceSettings`` (``cfg_scale``, ``cfg_schedule``; see
``omnipipe.generate.guidance`` for the one definition of CFG).

**Optional.** ``token_kind``, a class attribute ``"codes"`` or ``"latents"``: what the generator models
(a spec pairing it with the other kind of tokenizer is rejected when it loads).
``token_nll(batch) -> (B, L)``: the exact negative log-likelihood of each token in
nats, for models that have one (autoregressive); evaluation reports it as bits per token.

``layout.to_grid`` / ``layout.from_grid`` convert between a one-segment sequence and the
tokenizer's ``(B, T', H', W')`` codes or ``(B, T', H', W', C)`` latents.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel

from omnipipe.errors import OmnipipeError
from omnipipe.registry import FORBIDDEN_KEYS

TokenKind = Literal["codes", "latents"]
Grid = tuple[int, int, int]  # (T', H', W')


class TokenLayoutError(OmnipipeError):
    """Tokens that do not fit a layout, or a layout that cannot do what was asked."""


class GenerationError(OmnipipeError):
    """A generator asked for something it cannot do (e.g. guidance without classes, a prefix too long)."""


@dataclass(frozen=True)
class Segment:
    """A run of tokens on a grid ``(T', H', W')`` in raster order; positions start at frame ``time_offset``.

    ``vocab_size`` for codes (ids ``0 .. vocab_size - 1``), ``channels`` for latents.
    """

    name: str
    grid: Grid
    vocab_size: int | None = None
    channels: int | None = None
    time_offset: int = 0

    @property
    def length(self) -> int:
        return math.prod(self.grid)


@dataclass(frozen=True)
class TokenLayout:
    """How a token dataset's flat sequences are laid out, and how many classes label them."""

    kind: TokenKind
    segments: tuple[Segment, ...]
    num_classes: int = 0

    def __post_init__(self) -> None:
        if not self.segments:
            raise TokenLayoutError("a token layout needs at least one segment")
        for segment in self.segments:
            if len(segment.grid) != 3 or min(segment.grid) < 1:
                raise TokenLayoutError(f"segment '{segment.name}': grid {segment.grid} is not (T', H', W') ≥ 1")
            sized = segment.vocab_size if self.kind == "codes" else segment.channels
            if sized is None or sized < 1:
                wanted = "vocab_size" if self.kind == "codes" else "channels"
                raise TokenLayoutError(f"segment '{segment.name}': {self.kind} need a positive {wanted}")
        if self.num_classes < 0:
            raise TokenLayoutError(f"num_classes {self.num_classes} is negative")

    @classmethod
    def grid_of(cls, kind: TokenKind, grid: Grid, size: int, num_classes: int = 0) -> TokenLayout:
        """The one-segment layout of a tokenizer's grid; ``size`` is the codebook size or latent channels."""
        key = "vocab_size" if kind == "codes" else "channels"
        return cls(kind, (Segment("frames", tuple(grid), **{key: size}),), num_classes)

    @property
    def length(self) -> int:
        """Tokens per sequence, L."""
        return sum(segment.length for segment in self.segments)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def null_class(self) -> int:
        """The class index that means "no class" (classifier-free guidance's unconditional branch)."""
        return self.num_classes

    @property
    def channels(self) -> int:
        """Latent channels C (latent layouts; every segment must agree)."""
        found = {segment.channels for segment in self.segments}
        if self.kind != "latents" or len(found) != 1:
            raise TokenLayoutError(f"a {self.kind} layout with channels {sorted(found, key=str)} has no single C")
        return found.pop()

    @property
    def vocab_size(self) -> int:
        """All segments' vocabularies side by side (codes layouts): the size of one shared embedding table."""
        if self.kind != "codes":
            raise TokenLayoutError("a latents layout has no vocabulary")
        return sum(segment.vocab_size for segment in self.segments)

    @property
    def grid(self) -> Grid:
        """The grid of a one-segment layout."""
        if len(self.segments) != 1:
            raise TokenLayoutError(f"a layout of {len(self.segments)} segments has no single grid")
        return self.segments[0].grid

    def positions(self) -> torch.Tensor:
        """Integer positions (L, 3): (t, h, w) of every token, in sequence order."""
        parts = []
        for segment in self.segments:
            t, h, w = segment.grid
            grid = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"), -1)
            grid[..., 0] += segment.time_offset
            parts.append(grid.reshape(-1, 3))
        return torch.cat(parts)

    def vocab_offsets(self) -> torch.Tensor:
        """(L,) where each token's segment vocabulary starts in the shared table (codes layouts)."""
        starts = torch.tensor([0] + [s.vocab_size for s in self.segments[:-1]]).cumsum(0)
        return torch.cat([torch.full((s.length,), int(start)) for s, start in zip(self.segments, starts)])

    def vocab_sizes(self) -> torch.Tensor:
        """(L,) the vocabulary size of each token's segment (codes layouts)."""
        return torch.cat([torch.full((s.length,), s.vocab_size) for s in self.segments])

    def prefix_length(self, frames: int) -> int:
        """Tokens before the first one at latent frame ``frames`` or later: the prefix that gives ``frames`` frames."""
        if frames < 0:
            raise TokenLayoutError(f"prefix of {frames} frames")
        later = (self.positions()[:, 0] >= frames).nonzero()
        length = int(later[0]) if len(later) else self.length
        if frames > 0 and length == 0:
            raise TokenLayoutError(f"no token lies before latent frame {frames}")
        return length

    def to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) → (B, T', H', W') codes, or (B, L, C) → (B, T', H', W', C) latents (one-segment layouts)."""
        return tokens.reshape(tokens.shape[0], *self.grid, *tokens.shape[2:])

    def from_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """The inverse of ``to_grid``."""
        if tuple(tokens.shape[1:4]) != self.grid:
            raise TokenLayoutError(f"tokens of grid {tuple(tokens.shape[1:4])} do not fit layout grid {self.grid}")
        return tokens.flatten(1, 3)

    def check(self, tokens: torch.Tensor, what: str = "tokens") -> None:
        """Raise TokenLayoutError unless ``tokens`` are whole sequences of this layout (shape, dtype, code range)."""
        if self.kind == "codes":
            if tokens.ndim != 2 or tokens.shape[1] != self.length or tokens.is_floating_point():
                raise TokenLayoutError(f"{what}: expected integer codes (B, {self.length}), got {tuple(tokens.shape)} {tokens.dtype}")
            sizes = self.vocab_sizes().to(tokens.device)
            if bool(((tokens < 0) | (tokens >= sizes)).any()):
                raise TokenLayoutError(f"{what}: codes outside their segment's vocabulary")
        else:
            expected = (self.length, self.channels)
            if tokens.ndim != 3 or tuple(tokens.shape[1:]) != expected or not tokens.is_floating_point():
                raise TokenLayoutError(f"{what}: expected float latents (B, {expected[0]}, {expected[1]}), got {tuple(tokens.shape)}")
            if not bool(torch.isfinite(tokens).all()):
                raise TokenLayoutError(f"{what}: non-finite latents")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "num_classes": self.num_classes,
            "segments": [
                {"name": s.name, "grid": list(s.grid), "vocab_size": s.vocab_size, "channels": s.channels,
                 "time_offset": s.time_offset}
                for s in self.segments
            ],
        }  # fmt: skip

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> TokenLayout:
        segments = tuple(
            Segment(s["name"], tuple(s["grid"]), s.get("vocab_size"), s.get("channels"), s.get("time_offset", 0))
            for s in value["segments"]
        )
        return cls(value["kind"], segments, value.get("num_classes", 0))

    def with_classes(self, num_classes: int) -> TokenLayout:
        return TokenLayout(self.kind, self.segments, num_classes)


@dataclass
class TokenBatch:
    """One training or evaluation batch of whole sequences."""

    tokens: torch.Tensor  # (B, L) int64 codes | (B, L, C) float latents
    labels: torch.Tensor  # (B,) int64 class index; -1 = unlabelled (the null class)


def class_ids(labels: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """Labels (B,) → indices into a class table of ``num_classes + 1`` rows: -1 becomes the null class."""
    return torch.where(labels < 0, torch.full_like(labels, layout.null_class), labels)


@runtime_checkable
class Generator(Protocol):
    """The interface every registered ``generator`` implements (an ``nn.Module``)."""

    Sampling: ClassVar[type[BaseModel]]
    layout: TokenLayout

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]: ...

    def sample(
        self,
        labels: torch.Tensor,
        prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> torch.Tensor: ...


def generator_class_problem(cls: type) -> str | None:
    """Why ``cls`` cannot be a ``generator`` component (checked when it is registered), or None."""
    sampling = getattr(cls, "Sampling", None)
    if not (isinstance(sampling, type) and issubclass(sampling, BaseModel)):
        return f"{cls.__qualname__} needs a pydantic model `Sampling` (its sampling settings)"
    if sampling.model_config.get("extra") != "forbid":
        return f"{cls.__qualname__}.Sampling must set model_config = ConfigDict(extra='forbid')"
    reserved = sorted(FORBIDDEN_KEYS & set(sampling.model_fields))
    if reserved:
        return f"{cls.__qualname__}.Sampling: setting name '{reserved[0]}' is reserved; choose a more specific name"
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        return f"{cls.__qualname__} must be a torch.nn.Module (its weights are trained and saved)"
    if cls.forward is torch.nn.Module.forward:
        return f"{cls.__qualname__} needs `forward(batch)` returning `losses(batch)` (what DDP calls)"
    for method, needed in (("losses", ("batch",)), ("sample", ("labels", "prefix", "generator"))):
        function = getattr(cls, method, None)
        if not callable(function):
            return f"{cls.__qualname__} needs a method `{method}`"
        names = inspect.signature(function).parameters
        missing = [name for name in needed if name not in names]
        if missing:
            return f"{cls.__qualname__}.{method} needs the parameter(s) {', '.join(missing)}"
    return None
