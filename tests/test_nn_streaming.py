"""Streaming encode/decode against the whole-clip forward (the reference), bounded caches, refusals."""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from omnipipe.nn.components import register
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.streaming import (
    DecoderStream,
    EncoderStream,
    StreamingError,
    aligned_chunks,
    check_streamable,
    context_frames,
    stream_detokenize,
    stream_reconstruct,
    stream_tokenize,
    streaming_chunk,
)
from omnipipe.nn.temporal_attention import CausalAttention
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.model import ModelSpec

REFERENCE_LIKE = {  # the released OmniTokenizer's options, causal: conv position encodings, cosine attention, …
    "temporal": {"type": "causal", "peg": "causal", "qk_norm": "cosine", "logit_scale": 8.0, "kv_prenorm": False,
                 "qkv_bias": False, "alibi": True},
    "spatial": {"peg": "causal", "rope": "interleaved", "qk_norm": "cosine", "logit_scale": 8.0, "kv_prenorm": False},
    "embed_norms": True,
}  # fmt: skip
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"temporal": {"type": "causal"}, "spatial": {}, "embed_norms": False},
    "reference-like": REFERENCE_LIKE,
    "max-context": {"temporal": {"type": "causal", "max_context": 2}, "spatial": {}, "embed_norms": False},
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


def model_spec(variant: dict[str, Any], quantizer: dict[str, Any] | None = None) -> ModelSpec:
    temporal, spatial = variant["temporal"], variant["spatial"]
    stack = {"width": 32, "num_heads": 2, "mlp": "geglu", "mlp_ratio": 2.0}
    return ModelSpec.model_validate({
        "patchifier": {"type": "omni", "patch_size": 8, "temporal_patch_size": 4, "embed_norms": variant["embed_norms"]},
        "encoder": {**stack, "spatial": [{"type": "full", **spatial}, {"type": "window", "window_size": 4}],
                    "temporal": [temporal, temporal]},
        "quantizer": quantizer or {"type": "vq", "codebook_size": 64, "code_dim": 4},
        "decoder": {**stack, "width": 48, "num_heads": 3, "spatial": [{"type": "window", "window_size": 4}, {"type": "full", **spatial}],
                    "temporal": [temporal]},
    })  # fmt: skip


def build(registry: Registry, variant: dict[str, Any], dtype: torch.dtype = torch.float64, **kwargs: Any) -> Tokenizer:
    torch.manual_seed(0)
    model = Tokenizer.from_spec(model_spec(variant, **kwargs), registry).eval().to(dtype)
    with torch.no_grad():  # non-trivial conv encodings and scales, so every path matters
        for name, parameter in model.named_parameters():
            if "peg" in name or "scale" in name:
                parameter.normal_(0.0 if "peg" in name else 1.0, 0.2)
    return model


def video(frames: int, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(2, 3, frames, 32, 48, generator=generator) * 2 - 1).to(dtype)


def pieces(x: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    """``x`` cut along time into pieces of the given lengths, repeating the list until the end."""
    out, start, i = [], 0, 0
    while start < x.shape[2]:
        out.append(x[:, :, start : start + lengths[i % len(lengths)]])
        start += lengths[i % len(lengths)]
        i += 1
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_streamed_latents_and_reconstructions_equal_the_whole_clip_in_float64(registry: Registry, name: str, chunk: int) -> None:
    model = build(registry, VARIANTS[name])
    x = video(1 + 4 * 7)
    with torch.inference_mode():
        whole = model(x)
        encoder = EncoderStream(model)
        latents = torch.cat([encoder.push(c) for c in aligned_chunks(pieces(x, [3, 7, 2]), 4, chunk)], dim=1)
        streamed = list(stream_reconstruct(model, pieces(x, [5]), chunk))
    torch.testing.assert_close(latents, model.encode(x), rtol=0, atol=1e-12)
    assert [c.shape[2] for c, _ in streamed] == {1: [1] + [4] * 7, 2: [5, 8, 8, 8], 3: [9, 12, 8]}[chunk]
    torch.testing.assert_close(torch.cat([c for c, _ in streamed], dim=2), x, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([r for _, r in streamed], dim=2), whole.reconstruction, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_float32_streaming_gives_the_same_codes_and_latents_within_1e_5(registry: Registry, name: str) -> None:
    """Stated tolerance: float32 latents (magnitude ~4) within 1e-5 of the whole clip's (measured: ≤ 5e-7), codes equal."""
    model = build(registry, VARIANTS[name], torch.float32)
    x = video(1 + 4 * 9, torch.float32)
    with torch.inference_mode():
        codes = torch.cat(list(stream_tokenize(model, pieces(x, [4]), chunk=2)), dim=1)
        assert torch.equal(codes, model.tokenize(x))
        encoder = EncoderStream(model)
        streamed = torch.cat([encoder.push(c) for c in aligned_chunks([x], 4, 3)], dim=1)
        torch.testing.assert_close(streamed, model.encode(x), rtol=0, atol=1e-5)


def test_kl_latents_and_detokenize_stream_like_the_whole_clip(registry: Registry) -> None:
    model = build(registry, VARIANTS["reference-like"], quantizer={"type": "kl", "latent_channels": 4})
    x = video(1 + 4 * 5)
    with torch.inference_mode():
        latents = list(stream_tokenize(model, [x], chunk=2))
        assert [part.shape[1] for part in latents] == [2, 2, 2]
        torch.testing.assert_close(torch.cat(latents, dim=1), model.tokenize(x), rtol=0, atol=1e-12)
        pixels = torch.cat(list(stream_detokenize(model, [latents[0], torch.cat(latents[1:], dim=1)])), dim=2)
        torch.testing.assert_close(pixels, model.detokenize(model.tokenize(x)), rtol=0, atol=1e-12)


def test_vq_codes_detokenize_one_latent_frame_at_a_time(registry: Registry) -> None:
    model = build(registry, VARIANTS["default"])
    codes = torch.randint(0, 64, (1, 5, 4, 6))
    with torch.inference_mode():
        pixels = torch.cat(list(stream_detokenize(model, codes.split(1, dim=1))), dim=2)
        torch.testing.assert_close(pixels, model.detokenize(codes), rtol=0, atol=1e-12)


def test_max_context_attention_is_banded_causal_attention() -> None:
    torch.manual_seed(5)
    dim, heads, t, context = 16, 2, 6, 3
    module = CausalAttention(CausalAttention.Params(max_context=context), dim=dim, num_heads=heads).double()
    x = torch.randn(2, t, 2, 3, dim, dtype=torch.float64)
    q, k, v = (a.movedim(1, -2) for a in module.project(x))  # (B, H, W, heads, T, hd)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dim // heads)
    i, j = torch.arange(t)[:, None], torch.arange(t)[None]
    weights = scores.masked_fill(~((j <= i) & (i - j < context)), float("-inf")).softmax(-1)
    expected = module.proj((weights @ v).movedim(-2, 1).flatten(-2))
    torch.testing.assert_close(module(x), expected)


def test_a_bounded_context_keeps_the_cache_constant_and_a_full_one_grows(registry: Registry) -> None:
    bounded, full = build(registry, VARIANTS["max-context"]), build(registry, VARIANTS["default"])
    assert context_frames(bounded) == 2 and context_frames(full) is None
    x = video(1 + 4 * 12)
    sizes: dict[str, list[int]] = {"bounded": [], "full": []}
    with torch.inference_mode():
        for name, model in (("bounded", bounded), ("full", full)):
            encoder = EncoderStream(model)
            for chunk in aligned_chunks([x], 4, 1):
                encoder.push(chunk)
                sizes[name].append(encoder.cache_bytes)
            caches = [block.kv for block in encoder.state.blocks if block.kv is not None]
            assert len(caches) == 2 and all(cache.seen == 13 for cache in caches)
            kept = {cache.keys.shape[-2] for cache in caches}
            assert kept == ({1} if name == "bounded" else {13})
    frame = 2 * 2 * (2 * 4 * 6) * 32 * 8  # two layers × (k, v) × B·H'·W' positions × width × 8 bytes
    assert sizes["bounded"] == [frame] * 13
    assert sizes["full"] == [frame * (n + 1) for n in range(13)]


def test_an_image_streams_as_one_chunk(registry: Registry) -> None:
    model = build(registry, VARIANTS["reference-like"])
    x = video(1)
    with torch.inference_mode():
        [(chunk, recon)] = list(stream_reconstruct(model, [x]))
        torch.testing.assert_close(recon, model(x).reconstruction, rtol=0, atol=1e-12)
    assert torch.equal(chunk, x)


def test_aligned_chunks_cut_the_same_frames_from_any_pieces() -> None:
    x = torch.arange(30.0).view(1, 1, 30, 1, 1)
    expected = [list(range(0, 9)), list(range(9, 21)), list(range(21, 29))]  # 1 + 2·4, 3·4, then two whole tubes
    for lengths in ([1], [30], [4, 9], [7, 2, 11]):
        chunks = list(aligned_chunks(pieces(x, lengths), tube=4, chunk=3))
        assert [c.flatten().long().tolist() for c in chunks] == expected[:1] + [list(range(9, 21)), list(range(21, 29))]
    assert [c.shape[2] for c in aligned_chunks([x[:, :, :3]], tube=4, chunk=3)] == [1]  # too short: the first frame
    assert list(aligned_chunks([], tube=4)) == []
    with pytest.raises(StreamingError, match="at least one"):
        list(aligned_chunks([x], tube=4, chunk=0))


def test_a_later_chunk_must_be_whole_tubes_of_the_same_size(registry: Registry) -> None:
    model = build(registry, VARIANTS["default"])
    encoder = EncoderStream(model)
    with torch.inference_mode():
        with pytest.raises(InputShapeError, match=r"T=4 frames"):
            encoder.push(video(4))  # the first chunk needs 1 + k·4 frames
        encoder.push(video(5))
        for bad in (video(3), video(4)[:, :, :, :16], video(0)):
            with pytest.raises(InputShapeError, match=r"cannot continue a stream of \(B, C, H, W\) = \(2, 3, 32, 48\)"):
                encoder.push(bad)
        decoder = DecoderStream(model)
        assert decoder.push(torch.zeros(2, 2, 4, 6, 32, dtype=torch.float64)).shape == (2, 3, 5, 32, 48)
        assert decoder.push(torch.zeros(2, 1, 4, 6, 32, dtype=torch.float64)).shape == (2, 3, 4, 32, 48)


@pytest.mark.parametrize(
    ("temporal", "spatial", "named"),
    [
        ({"type": "causal", "peg": "causal", "peg_order": "reference_temporal"}, {}, "model.encoder.temporal[0] (causal)"),
        ({"type": "causal"}, {"peg": "centered"}, "model.encoder.spatial[0] (full)"),
    ],
)
def test_models_that_look_ahead_are_refused_with_the_block_named(
    registry: Registry, temporal: dict[str, Any], spatial: dict[str, Any], named: str
) -> None:
    model = build(registry, {"temporal": temporal, "spatial": spatial, "embed_norms": False})
    with pytest.raises(StreamingError) as refused:
        check_streamable(model)
    assert str(refused.value).startswith(f"{named}: its conv position encoding (") and "reads later frames" in str(refused.value)


def test_no_chunk_means_the_whole_clip_path(registry: Registry) -> None:
    model = build(registry, VARIANTS["reference-like"], torch.float32)
    x = video(1 + 4 * 3 + 2, torch.float32)  # two frames beyond the last whole tube are dropped
    with torch.inference_mode():
        [codes] = list(stream_tokenize(model, pieces(x, [6]), chunk=None))
        [(used, recon)] = list(stream_reconstruct(model, pieces(x, [6]), chunk=None))
        assert torch.equal(codes, model.tokenize(x[:, :, :13])) and torch.equal(used, x[:, :, :13])
        assert torch.equal(recon, model(x[:, :, :13]).reconstruction)


def test_streaming_chunk_falls_back_to_whole_clips_for_a_model_that_cannot_stream(registry: Registry) -> None:
    looks_ahead = {"temporal": {"type": "causal", "peg": "causal", "peg_order": "reference_temporal"}, "spatial": {}, "embed_norms": False}
    assert streaming_chunk(build(registry, looks_ahead), 4) is None
    assert streaming_chunk(build(registry, VARIANTS["default"]), 4) == 4
    assert streaming_chunk(build(registry, VARIANTS["default"]), None) is None
