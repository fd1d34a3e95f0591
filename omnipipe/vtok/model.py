"""VTok: a clip as its key frame's OmniTokenizer tokens plus one residual token per later frame.

    x (B, C, T, H, W)
      → unit features  F = (F_key, F_1 … F_U)              (B, 1 + U, H', W', D)   the OmniTokenizer encoder
      → key tokens     the bottleneck of F_key               (B, 1, H', W') codes | (B, 1, H', W', C) latents
        key latents    k = z_q of F_key                      (B, 1, H', W', D)
      → residuals      r_u = MLP(pool(F_u − F_key))          (B, U, R)  then the residual bottleneck:
        residual tokens                                      (B, U) codes | (B, U, C') latents
      → prediction     ẑ_u = k + P(k, r_u) − P(k, r_∅)        (B, U, H', W', D)
                       r_∅ = the residual of no change (F_u = F_key), so a frame equal to the key frame is
                       predicted as exactly the key frame's latents, whatever the weights
      → pixels         the OmniTokenizer decoder on (k, ẑ_1 … ẑ_U)

A clip costs N + U tokens (N = H'·W' key-frame tokens, U = T − 1 or T' − 1 residual tokens) instead of
the plain tokenizer's N·T'. See docs/vtok.md for which choices are ours.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from omnipipe.errors import OmnipipeError
from omnipipe.generate.contract import Segment, TokenLayout, TokenLayoutError
from omnipipe.nn.quantizer_output import QuantizerOutput
from omnipipe.nn.tokenizer import SPEC_KEY, Tokenizer
from omnipipe.registry import Registry
from omnipipe.safetensors_bytes import write_module
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.vtok import VTokModelSpec
from omnipipe.vtok.predictor import LatentPredictor
from omnipipe.vtok.residual import ResidualEncoder
from omnipipe.vtok.units import check_frames, decode_units, encode_units, unit_count

VTOK_SPEC_KEY = "omnipipe.vtok_spec"


@dataclass
class VTokTokens:
    """A clip's tokens: the key frame's grid and one residual token per unit."""

    key: torch.Tensor  # (B, 1, H', W') codes | (B, 1, H', W', C) latents
    residual: torch.Tensor  # (B, U) codes | (B, U, C') latents


@dataclass
class VTokOutput:
    """The reconstruction and what the losses need."""

    reconstruction: torch.Tensor  # (B, C, T, H, W)
    predicted: torch.Tensor  # (B, U, H', W', D) predicted latents of the later units
    target: torch.Tensor  # (B, U, H', W', D) the OmniTokenizer's own latents of those units
    key: QuantizerOutput  # the OmniTokenizer's bottleneck over the key frame and every unit
    residual: QuantizerOutput  # the residual bottleneck over r_∅ (row 0) and the B·U residuals


def tokens_of(q: QuantizerOutput) -> torch.Tensor:
    """A bottleneck's tokens: its codes, or its continuous latents."""
    return q.codes if q.codes is not None else q.latents


class VTok(nn.Module):
    """VTok on a trained OmniTokenizer ``base`` (kept as a submodule; frozen unless ``finetune_base``)."""

    def __init__(self, spec: VTokModelSpec, base: Tokenizer, registry: Registry, finetune_base: bool = False) -> None:
        super().__init__()
        self.spec, self.base, self.finetune_base = spec, base, finetune_base
        dim = base.spec.encoder.width
        self.residual_encoder = ResidualEncoder(dim, spec.residual_width, spec.pooling)
        self.residual_quantizer = registry.build("quantizer", spec.residual_quantizer, dim=spec.residual_width)
        self.predictor = LatentPredictor(spec.predictor, registry, latent_dim=dim, cond_dim=spec.residual_width)
        if not finetune_base:
            base.requires_grad_(False)
            base.eval()

    def train(self, mode: bool = True) -> VTok:
        """A frozen OmniTokenizer stays in eval mode (no codebook updates, KL means)."""
        super().train(mode)
        if not self.finetune_base:
            self.base.eval()
        return self

    @property
    def patchifier(self) -> nn.Module:
        """The OmniTokenizer's patchifier (media readers ask it for patch sizes)."""
        return self.base.patchifier

    def units(self, frames: int) -> int:
        """Residual tokens of a clip of ``frames`` frames."""
        return unit_count(self.spec.residual_unit, self.base, frames)

    def residuals(self, features: torch.Tensor) -> QuantizerOutput:
        """Unit features (B, 1 + U, H', W', D) → the residual bottleneck over (1 + B·U, 1, 1, 1, R): row 0 is r_∅."""
        differences = features[:, 1:] - features[:, :1]  # (B, U, H', W', D)
        none = torch.zeros_like(features[:1, :1])  # (1, 1, H', W', D): no change
        vectors = torch.cat([self.residual_encoder(none).flatten(0, 1), self.residual_encoder(differences).flatten(0, 1)])
        return self.residual_quantizer(vectors[:, None, None, None])

    def predict(self, key: torch.Tensor, residual: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
        """Key latents (B, 1, H', W', D), residual z_q (B, U, R), r_∅'s z_q (R,) → predicted latents (B, U, H', W', D)."""
        b, u = residual.shape[:2]
        conditions = torch.cat([none.expand(b, 1, -1), residual], dim=1).flatten(0, 1)  # (B·(1 + U), R)
        keys = key.expand(b, 1 + u, *key.shape[2:]).flatten(0, 1)[:, None]  # (B·(1 + U), 1, H', W', D)
        out = self.predictor(keys, conditions).view(b, 1 + u, *key.shape[2:])
        return key + out[:, 1:] - out[:, :1]

    def forward(self, x: torch.Tensor) -> VTokOutput:
        """Pixels (B, C, T ≥ 2, H, W) → reconstruction through the key frame's and the residual tokens."""
        features = encode_units(self.spec.residual_unit, self.base, x)  # (B, 1 + U, H', W', D)
        key_q = self.base.quantize(features)
        key = key_q.z_q[:, :1]
        residual_q = self.residuals(features)
        z_r = residual_q.z_q.flatten(1)  # (1 + B·U, R)
        predicted = self.predict(key, z_r[1:].view(x.shape[0], -1, z_r.shape[-1]), z_r[0])
        reconstruction = decode_units(self.spec.residual_unit, self.base, torch.cat([key, predicted], dim=1))
        return VTokOutput(reconstruction, predicted, key_q.z_q[:, 1:], key_q, residual_q)

    def tokenize(self, x: torch.Tensor) -> VTokTokens:
        """Pixels (B, C, T ≥ 2, H, W) → the key frame's tokens and the residual tokens."""
        features = encode_units(self.spec.residual_unit, self.base, x)
        key = tokens_of(self.base.quantize(features[:, :1]))
        residual = tokens_of(self.residual_quantizer(self.residual_encoder(features[:, 1:] - features[:, :1])[:, :, None, None]))
        return VTokTokens(key, residual[:, :, 0, 0])

    def no_change(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """r_∅'s z_q (R,) for a key grid (H', W')."""
        none = like.new_zeros(1, 1, *grid, self.base.spec.encoder.width)
        return self.residual_quantizer(self.residual_encoder(none)[:, :, None, None]).z_q.flatten()

    def detokenize(self, tokens: VTokTokens) -> torch.Tensor:
        """The inverse of ``tokenize``: pixels (B, C, T, H, W)."""
        key = self.base.quantizer.decode_codes(tokens.key)  # (B, 1, H', W', D)
        residual = self.residual_quantizer.decode_codes(tokens.residual[:, :, None, None])[:, :, 0, 0]  # (B, U, R)
        predicted = self.predict(key, residual, self.no_change(key.shape[2:4], key))
        return decode_units(self.spec.residual_unit, self.base, torch.cat([key, predicted], dim=1))

    def layout(self, frames: int, height: int, width: int, num_classes: int = 0) -> TokenLayout:
        """The token layout of a clip of ``frames`` frames of ``height``×``width`` pixels: N key tokens, U residual ones."""
        check_frames(frames)
        _, h, w = self.base.patchifier.latent_grid(1, height, width)
        base_size, residual_size = self.base.quantizer.codebook_size, self.residual_quantizer.codebook_size
        if (base_size is None) != (residual_size is None):
            kinds = ("codes" if base_size else "latents", "codes" if residual_size else "latents")
            raise TokenLayoutError(f"the key frame gives {kinds[0]} but the residual bottleneck gives {kinds[1]}")
        if base_size is not None:
            key = Segment("key", (1, h, w), vocab_size=base_size)
            residual = Segment("residual", (self.units(frames), 1, 1), vocab_size=residual_size, time_offset=1)
            return TokenLayout("codes", (key, residual), num_classes)
        channels = (self.base.quantizer.params.latent_channels, self.residual_quantizer.params.latent_channels)
        if channels[0] != channels[1]:
            raise TokenLayoutError(f"key latents have {channels[0]} channels but residual latents {channels[1]}: "
                                   "one latent sequence needs one channel count")  # fmt: skip
        key = Segment("key", (1, h, w), channels=channels[0])
        residual = Segment("residual", (self.units(frames), 1, 1), channels=channels[1], time_offset=1)
        return TokenLayout("latents", (key, residual), num_classes)

    @staticmethod
    def to_sequence(tokens: VTokTokens) -> torch.Tensor:
        """Tokens → one flat sequence (B, N + U) codes or (B, N + U, C) latents, key frame first."""
        return torch.cat([tokens.key.flatten(1, 3), tokens.residual], dim=1)

    @staticmethod
    def from_sequence(sequence: torch.Tensor, layout: TokenLayout) -> VTokTokens:
        """The inverse of ``to_sequence`` for a ``layout`` of this model."""
        layout.check(sequence, "VTok sequence")
        key_segment = layout.segments[0]
        key = sequence[:, : key_segment.length].reshape(sequence.shape[0], *key_segment.grid, *sequence.shape[2:])
        return VTokTokens(key, sequence[:, key_segment.length :])

    def save(self, path: str | Path) -> None:
        """Weights (OmniTokenizer included) and both specs as safetensors metadata, written atomically."""
        metadata = {"format": "pt", SPEC_KEY: self.base.spec.model_dump_json(), VTOK_SPEC_KEY: self.spec.model_dump_json()}
        write_module(path, self, metadata)

    @classmethod
    def from_checkpoint(cls, path: str | Path, registry: Registry | None = None, device: str | torch.device = "cpu") -> VTok:
        """Load a file written by ``save``, in eval mode."""
        if registry is None:
            from omnipipe.plugins import get_registry

            registry = get_registry()
        metadata = checkpoint_metadata(path)
        if VTOK_SPEC_KEY not in metadata:
            raise OmnipipeError(f"{path}: an OmniTokenizer checkpoint, not a VTok one (no '{VTOK_SPEC_KEY}' metadata)")
        base = Tokenizer.from_spec(ModelSpec.model_validate(json.loads(metadata[SPEC_KEY])), registry)
        spec = VTokModelSpec.model_validate(json.loads(metadata[VTOK_SPEC_KEY]))
        spec.residual_quantizer.resolve(registry)
        model = cls(spec, base, registry)
        model.load_state_dict(load_file(str(path), device=str(device)))
        return model.to(device).eval()


def checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of an omnipipe model file (one clear error when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise OmnipipeError(f"{path}: tokenizer checkpoint not found")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if SPEC_KEY not in metadata:
        raise OmnipipeError(f"{path}: not an omnipipe tokenizer checkpoint (no '{SPEC_KEY}' metadata)")
    return metadata


def load_tokenizer(path: str | Path, registry: Registry | None = None, device: str | torch.device = "cpu") -> Tokenizer | VTok:
    """A trained OmniTokenizer or VTok from its model file, whichever it is."""
    if VTOK_SPEC_KEY in checkpoint_metadata(path):
        return VTok.from_checkpoint(path, registry, device)
    return Tokenizer.from_checkpoint(path, registry, device)
