"""Encode and decode a video chunk by chunk, so memory is bounded by the chunk instead of the video.

Everything in the tokenizer looks only back in time: spatial attention stays inside a frame, temporal
attention is causal, a causal conv position encoding reads the two frames before. So a video can be
encoded as a stream of chunks aligned to the patchifier — the first frame (plus whole tubes), then
whole tubes — if each causal attention layer keeps the keys and values of the frames it has seen
(``KVCache``) and each conv position encoding its last two input frames (``ConvState``). The latents
are those of encoding the whole clip, up to float summation order (the tests bound the difference);
the quantizer maps each latent position on its own, so the codes are the same. Decoding likewise.

Memory: the activations are those of one chunk; a full causal cache grows by one frame of keys and
values per latent frame and layer (2·H'·W'·width floats). Layers with ``max_context: N`` keep
N − 1 frames, so a model trained with it streams any length in constant memory.

Needs the builtin ``omni`` patchifier (``embed_tubes``/``unpatchify_tubes``), attention kinds that are
per frame (``per_frame``: ``full``, ``window``) or take a ``KVCache`` (``takes_kv_cache``: ``causal``),
and causal conv position encodings in grid order. The released OmniTokenizer's temporal blocks (``peg_order: reference_temporal``) mix
frames both ways and cannot stream: ``StreamingError`` names the block.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from omnipipe.errors import OmnipipeError
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.stack import Stack
from omnipipe.nn.stream_state import BlockState, ConvState, KVCache, StackState
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.spec.model import StackSpec

DEFAULT_CHUNK = 4  # latent frames per chunk: with 4-frame tubes the first chunk is 13 frames, the next ones 16


class StreamingError(OmnipipeError):
    """A tokenizer that cannot encode or decode a video chunk by chunk, or a chunk that does not fit the stream."""


def _entry_names(spec: StackSpec, side: str, temporal_first: bool) -> list[str]:
    """Spec paths of a stack's blocks in block order, e.g. ``model.encoder.temporal[0] (causal)``."""
    groups = [("temporal", spec.temporal), ("spatial", spec.spatial)]
    return [
        f"model.{side}.{group}[{i}] ({entry.type})"
        for group, entries in (groups if temporal_first else groups[::-1])
        for i, entry in enumerate(entries)
    ]


def new_stack_state(stack: Stack, spec: StackSpec, side: str, temporal_first: bool = False) -> StackState:
    """Empty per-block states for streaming through ``stack``; StreamingError names a block that cannot stream."""
    states = []
    for name, block in zip(_entry_names(spec, side, temporal_first), stack.blocks, strict=True):
        attention = block.attn
        per_frame = getattr(attention, "per_frame", False)
        if not per_frame and not getattr(attention, "takes_kv_cache", False):
            raise StreamingError(
                f"{name}: this attention kind neither stays inside a frame nor takes a cache of past frames, "
                "so videos cannot be encoded chunk by chunk; encode whole clips"
            )
        peg = getattr(attention, "peg", None)
        if peg is not None and not peg.streams:
            raise StreamingError(
                f"{name}: its conv position encoding ({peg.kind}, {peg.order} order) reads later frames, so videos "
                "cannot be encoded chunk by chunk; encode whole clips"
            )
        states.append(BlockState(kv=None if per_frame else KVCache(), conv=None if peg is None else ConvState()))
    return StackState(states)


def check_streamable(model: Tokenizer) -> None:
    """Raise StreamingError (naming the component) unless ``model`` can encode and decode chunk by chunk."""
    for method in ("embed_tubes", "unpatchify_tubes"):
        if not hasattr(model.patchifier, method):
            raise StreamingError(
                f"model.patchifier ({model.spec.patchifier.type}): has no {method}, so videos cannot be encoded "
                "chunk by chunk; encode whole clips"
            )
    new_stack_state(model.encoder, model.spec.encoder, "encoder")
    new_stack_state(model.decoder, model.spec.decoder, "decoder", temporal_first=True)


def context_frames(model: Tokenizer) -> int | None:
    """The most latent frames any causal layer attends to (its ``max_context``); None when one is unbounded."""
    limits = [
        getattr(block.attn, "params", None) for stack in (model.encoder, model.decoder) for block in stack.blocks
        if not getattr(block.attn, "per_frame", False)
    ]  # fmt: skip
    bounds = [getattr(params, "max_context", None) for params in limits]
    return None if any(bound is None for bound in bounds) else max(bounds, default=1)


def tube_frames(model: Tokenizer) -> int:
    """Pixel frames per latent frame after the first (the patchifier's temporal patch; 1 if it has none)."""
    return getattr(getattr(model.patchifier, "params", None), "temporal_patch_size", 1)


class _Stream:
    """The state shared by encoder and decoder streams: how many latent frames went through."""

    def __init__(self) -> None:
        self.frames = 0  # latent frames so far
        self.state = StackState()

    @property
    def cache_bytes(self) -> int:
        """Bytes the stream keeps between chunks (caches and conv states)."""
        return self.state.nbytes


class EncoderStream(_Stream):
    """One video's pixels, chunk by chunk → its latents before the bottleneck, chunk by chunk.

    ``push`` takes pixel chunks (B, C, t, H, W) in order: the first holds the first frame and whole
    tubes (t = 1 + k·pt), the later ones whole tubes (t = k·pt, k ≥ 1); it returns their latents
    (B, t', H', W', D).
    """

    def __init__(self, model: Tokenizer) -> None:
        super().__init__()
        check_streamable(model)
        self.model = model
        self.state = new_stack_state(model.encoder, model.spec.encoder, "encoder")
        self.shape: tuple[int, ...] | None = None

    def push(self, pixels: torch.Tensor) -> torch.Tensor:
        patchifier = self.model.patchifier
        if self.frames == 0:
            tokens = patchifier(pixels)  # checks the shape: (B, 1, H', W', D) … (B, 1 + k, H', W', D)
            self.shape = (pixels.shape[0], pixels.shape[1], *pixels.shape[3:])
        else:
            pt = tube_frames(self.model)
            t = pixels.shape[2] if pixels.ndim == 5 else 0
            if pixels.ndim != 5 or (pixels.shape[0], pixels.shape[1], *pixels.shape[3:]) != self.shape or t == 0 or t % pt:
                raise InputShapeError(
                    f"pixels of shape {tuple(pixels.shape)} cannot continue a stream of (B, C, H, W) = {self.shape}: "
                    f"a later chunk has the same batch, channels and size and k·{pt} frames (k ≥ 1)"
                )
            tokens = patchifier.embed_tubes(pixels)  # (B, k, H', W', D)
        latents = self.model.encoder(tokens, self.state)
        self.frames += latents.shape[1]
        return latents


class DecoderStream(_Stream):
    """One video's bottleneck outputs z_q (B, t', H', W', D), chunk by chunk → its pixels (B, C, t, H, W)."""

    def __init__(self, model: Tokenizer) -> None:
        super().__init__()
        check_streamable(model)
        self.model = model
        self.state = new_stack_state(model.decoder, model.spec.decoder, "decoder", temporal_first=True)

    def push(self, z_q: torch.Tensor) -> torch.Tensor:
        tokens = self.model.decoder(self.model.bridge(z_q), self.state)  # (B, t', H', W', out_dim)
        patchifier = self.model.patchifier
        pixels = patchifier.unpatchify(tokens) if self.frames == 0 else patchifier.unpatchify_tubes(tokens)
        self.frames += z_q.shape[1]
        return pixels


def streaming_chunk(model: Tokenizer, chunk: int | None = DEFAULT_CHUNK) -> int | None:
    """``chunk`` when ``model`` can stream (see ``check_streamable``), else None: whole clips."""
    if chunk is None or not isinstance(model, Tokenizer):  # e.g. VTok
        return None
    try:
        check_streamable(model)
    except StreamingError:
        return None
    return chunk


def aligned_chunks(
    pieces: Iterable[torch.Tensor], tube: int, chunk: int | None = DEFAULT_CHUNK
) -> Iterator[torch.Tensor]:
    """Pixel pieces (B, C, t, H, W) of any lengths, in order → chunks a stream takes, of ``chunk`` latent frames.

    The first chunk has 1 + (chunk − 1)·tube frames, the next ones chunk·tube; at the end the frames
    left are cut to whole tubes (a last incomplete tube is dropped, as for whole clips). ``chunk``
    None: one chunk with every frame (cut the same way).
    """
    if chunk is not None and chunk < 1:
        raise StreamingError(f"chunk of {chunk} latent frames: a chunk holds at least one")
    buffered: list[torch.Tensor] = []
    count, started = 0, False
    for piece in pieces:
        buffered.append(piece)
        count += piece.shape[2]
        while chunk is not None and count >= (want := chunk * tube if started else 1 + (chunk - 1) * tube):
            frames = torch.cat(buffered, dim=2) if len(buffered) > 1 else buffered[0]
            yield frames[:, :, :want]
            rest = frames[:, :, want:]
            buffered, count, started = ([rest] if rest.shape[2] else []), rest.shape[2], True
    usable = count // tube * tube if started else (1 + (count - 1) // tube * tube if count else 0)
    if usable:
        yield torch.cat(buffered, dim=2)[:, :, :usable]


def stream_tokenize(
    model: Tokenizer, pieces: Iterable[torch.Tensor], chunk: int | None = DEFAULT_CHUNK
) -> Iterator[torch.Tensor]:
    """Codes (B, t', H', W') — or continuous latents (B, t', H', W', C) — of a video given as pixel pieces, per chunk.

    Call under ``torch.inference_mode()`` with the model in eval mode; concatenated over time they are
    ``model.tokenize`` of the whole video. ``chunk`` None: the whole video at once, by ``model.tokenize``.
    """
    encoder = EncoderStream(model) if chunk is not None else None
    for pixels in aligned_chunks(pieces, tube_frames(model), chunk):
        if encoder is None:
            yield model.tokenize(pixels)
        else:
            q = model.quantize(encoder.push(pixels))
            yield q.codes if q.codes is not None else q.latents


def tokenize_video(model: Tokenizer, pieces: Iterable[torch.Tensor], chunk: int | None = DEFAULT_CHUNK) -> tuple[object, int]:
    """``model.tokenize`` of the video that ``pieces`` make up (cut to whole tubes), streamed ``chunk`` latent frames
    at a time (None: in one call, for any tokenizer), and the number of frames it covers."""
    read = 0

    def counted() -> Iterator[torch.Tensor]:
        nonlocal read
        for piece in pieces:
            read += piece.shape[2]
            yield piece

    parts = list(stream_tokenize(model, counted(), chunk))
    tube = tube_frames(model)
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)), 1 + (read - 1) // tube * tube


def stream_detokenize(model: Tokenizer, codes: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """Pixels (B, C, t, H, W) in [-1, 1] of codes (or latents) given in pieces along time; see ``Tokenizer.detokenize``."""
    decoder = DecoderStream(model)
    for piece in codes:
        yield decoder.push(model.quantizer.decode_codes(piece)).clamp(-1, 1)


def stream_reconstruct(
    model: Tokenizer, pieces: Iterable[torch.Tensor], chunk: int | None = DEFAULT_CHUNK
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input chunk, its reconstruction) pairs, each (B, C, t, H, W): ``model(video).reconstruction`` chunk by chunk
    (``chunk`` None: the whole video at once, by ``model``)."""
    streams = (EncoderStream(model), DecoderStream(model)) if chunk is not None else None
    for pixels in aligned_chunks(pieces, tube_frames(model), chunk):
        if streams is None:
            yield pixels, model(pixels).reconstruction
        else:
            yield pixels, streams[1].push(model.quantize(streams[0].push(pixels)).z_q)
