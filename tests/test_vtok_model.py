"""VTok's model: key tokens are the plain tokenizer's first latent frame, residual codes are nearest-code lookups,
a static clip costs only no-change tokens and decodes to its key frame, the N + U layout round-trips."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from omnipipe.generate.contract import TokenLayout, TokenLayoutError
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.temporal_attention import CausalAttention
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry, load_registry
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.vtok import VTokModelSpec
from omnipipe.vtok import VTok, load_tokenizer
from omnipipe.vtok.causal import NotCausalError, check_temporal_causal
from omnipipe.vtok.residual import ResidualEncoder
from omnipipe.vtok.units import decode_units

BASE = {
    "patchifier": {"type": "omni", "patch_size": 4, "temporal_patch_size": 4},
    "encoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
    "quantizer": {"type": "vq", "codebook_size": 64, "code_dim": 4},
    "decoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
}


def vtok_spec(unit: str = "frame", pooling: str = "query", **quantizer: object) -> VTokModelSpec:
    return VTokModelSpec.model_validate({
        "residual_unit": unit, "pooling": pooling, "residual_width": 32,
        "residual_quantizer": quantizer or {"type": "vq", "codebook_size": 16, "code_dim": 4},
        "predictor": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}]},
    })  # fmt: skip


def make_vtok(unit: str = "frame", pooling: str = "query", seed: int = 0) -> VTok:
    torch.manual_seed(seed)
    base = Tokenizer.from_spec(ModelSpec.model_validate(BASE), get_registry())
    return VTok(vtok_spec(unit, pooling), base, get_registry()).eval()


def clips(batch: int = 2, frames: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.rand((batch, 3, frames, 16, 16), generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("unit", ["frame", "latent_frame"])
def test_key_tokens_are_the_plain_tokenizers_first_latent_frame(unit: str) -> None:
    model, x = make_vtok(unit), clips()
    with torch.no_grad():
        assert torch.equal(model.tokenize(x).key, model.base.tokenize(x)[:, :1])


def test_a_static_clip_has_only_no_change_tokens_and_decodes_to_its_key_frame() -> None:
    model = make_vtok()
    frame = clips(batch=2, frames=1)
    static = frame.expand(-1, -1, 5, -1, -1).contiguous()
    with torch.no_grad():
        tokens = model.tokenize(static)
        recon = model(static).reconstruction
        key_image = model.base(frame).reconstruction  # the plain tokenizer's image reconstruction of frame 0
    assert tokens.residual.unique().numel() == 1  # one token for "no change", whatever the picture
    torch.testing.assert_close(recon, key_image.expand_as(recon), atol=2e-5, rtol=0)
    moving = clips(batch=2, frames=5)
    with torch.no_grad():
        assert not torch.allclose(model(moving).reconstruction[:, :, 1:], model(moving).reconstruction[:, :, :1])


def test_residual_codes_are_the_nearest_codebook_entries_and_decode_to_them() -> None:
    model, x = make_vtok(), clips()
    quantizer = model.residual_quantizer
    with torch.no_grad():
        features = model.base.encode(x.transpose(1, 2).flatten(0, 1)[:, :, None]).view(2, 5, 4, 4, 32)
        vectors = model.residual_encoder(features[:, 1:] - features[:, :1])  # (B, U, R)
        projected = F.normalize(quantizer.proj_in(vectors), dim=-1).flatten(0, 1)
        table = F.normalize(quantizer.codebook, dim=-1)
        expected = torch.cdist(projected, table).argmin(dim=-1).view(2, 4)  # brute-force nearest neighbour
        codes = model.tokenize(x).residual
        decoded = quantizer.decode_codes(codes)
    assert torch.equal(codes, expected)
    torch.testing.assert_close(decoded, quantizer.proj_out(table[expected]))


def test_position_aware_pooling_tells_a_translation_from_its_opposite() -> None:
    """Mean-pooling a translation's feature difference would cancel; with positions it does not."""
    torch.manual_seed(0)
    for pooling in ("mean", "query"):
        encoder = ResidualEncoder(dim=8, width=16, pooling=pooling)
        blob = torch.zeros(1, 1, 6, 6, 8)
        left, right = blob.clone(), blob.clone()
        left[..., 2, 1, :], right[..., 2, 4, :] = 1.0, 1.0
        with torch.no_grad():
            moved, back = encoder(right - left), encoder(left - right)
            none = encoder(torch.zeros_like(blob))
        assert (moved - back).norm() > 0.1 * (moved - none).norm() > 0, pooling


def test_no_change_residual_predicts_exactly_the_key_latents() -> None:
    model = make_vtok()
    key = torch.randn(3, 1, 4, 4, 32)
    none = torch.randn(32)
    with torch.no_grad():
        predicted = model.predict(key, none.expand(3, 2, 32), none)
    torch.testing.assert_close(predicted, key.expand(3, 2, 4, 4, 32), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("unit", "residual"), [("frame", 4), ("latent_frame", 1)])
def test_layout_counts_n_plus_u_tokens_and_round_trips(unit: str, residual: int) -> None:
    model, x = make_vtok(unit), clips()
    layout = model.layout(5, 16, 16, num_classes=10)
    assert layout.length == 16 + residual  # N + U, against the plain tokenizer's N·T' = 16 · 2
    assert [s.name for s in layout.segments] == ["key", "residual"]
    assert layout.prefix_length(1) == 16  # frame prediction from the key frame: its N tokens
    assert layout.positions()[16:, 0].tolist() == list(range(1, residual + 1))
    assert TokenLayout.from_json(layout.to_json()) == layout
    with torch.no_grad():
        tokens = model.tokenize(x)
        sequence = model.to_sequence(tokens)
        back = model.from_sequence(sequence, layout)
        assert torch.equal(back.key, tokens.key) and torch.equal(back.residual, tokens.residual)
        torch.testing.assert_close(model.detokenize(back), model(x).reconstruction, atol=1e-4, rtol=0)


def test_checkpoint_round_trip_and_load_tokenizer_picks_the_kind(tmp_path: Path) -> None:
    model, x = make_vtok(), clips()
    model.save(tmp_path / "vtok.safetensors")
    model.base.save(tmp_path / "plain.safetensors")
    loaded = load_tokenizer(tmp_path / "vtok.safetensors")
    assert isinstance(loaded, VTok) and isinstance(load_tokenizer(tmp_path / "plain.safetensors"), Tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).reconstruction, model(x).reconstruction)
    with pytest.raises(Exception, match="not a VTok one"):
        VTok.from_checkpoint(tmp_path / "plain.safetensors")


def test_a_clip_with_one_frame_is_refused_in_one_line() -> None:
    with pytest.raises(InputShapeError, match=r"at least 2 frames .* \(1 frames\)"):
        make_vtok().tokenize(clips(frames=1))


class LookAhead(CausalAttention):
    """Temporal attention that sees later frames too (not causal)."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, h, w = q.shape[:4]
        q, k, v = (a.permute(0, 2, 3, 4, 1, 5).flatten(0, 2) for a in (q, k, v))  # (B·H·W, heads, T, hd)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.unflatten(0, (b, h, w)).permute(0, 4, 1, 2, 3, 5)


def test_a_tokenizer_that_is_not_temporal_causal_is_refused() -> None:
    registry = load_registry()
    registry.add("attention", "lookahead", LookAhead)
    spec = dict(BASE, encoder={**BASE["encoder"], "temporal": [{"type": "lookahead"}]})
    base = Tokenizer.from_spec(ModelSpec.model_validate(spec), registry)
    with pytest.raises(NotCausalError, match="stage 'joint' is not temporal-causal"):
        check_temporal_causal(base, "joint", 5, (16, 16))
    assert check_temporal_causal(make_vtok().base, "joint", 5, (16, 16)) == 0.0


def test_continuous_vtok_on_a_kl_tokenizer_gives_one_latent_sequence() -> None:
    torch.manual_seed(0)
    registry = get_registry()
    base = Tokenizer.from_spec(ModelSpec.model_validate(dict(BASE, quantizer={"type": "kl", "latent_channels": 4})), registry)
    model = VTok(vtok_spec(type="kl", latent_channels=4), base, registry).eval()
    x = clips()
    with torch.no_grad():
        tokens = model.tokenize(x)
        layout = model.layout(5, 16, 16)
        sequence = model.to_sequence(tokens)
        assert tokens.key.shape == (2, 1, 4, 4, 4) and tokens.residual.shape == (2, 4, 4)
        assert layout.kind == "latents" and layout.channels == 4 and sequence.shape == (2, 20, 4)
        torch.testing.assert_close(model.detokenize(model.from_sequence(sequence, layout)), model(x).reconstruction,
                                   atol=1e-4, rtol=0)  # fmt: skip
    other = VTok(vtok_spec(type="kl", latent_channels=8), base, registry)
    with pytest.raises(TokenLayoutError, match="key latents have 4 channels but residual latents 8"):
        other.layout(5, 16, 16)


def test_frame_units_decode_each_frame_as_the_plain_tokenizer_reconstructs_it_as_an_image() -> None:
    model, x = make_vtok(), clips()
    with torch.no_grad():
        ceiling = decode_units("frame", model.base, model(x).key.z_q)  # every frame's own latents
        images = torch.cat([model.base(x[:, :, t : t + 1]).reconstruction for t in range(5)], dim=2)
    torch.testing.assert_close(ceiling, images, atol=1e-5, rtol=0)
