"""The tokenizer: patchify → encoder → bottleneck → decoder → unpatchify, assembled from a ModelSpec."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from omnipipe.errors import OmnipipeError
from omnipipe.generate.contract import TokenLayout
from omnipipe.nn.linear import Linear
from omnipipe.nn.quantizer_output import QuantizerOutput
from omnipipe.nn.stack import Stack, init_weights
from omnipipe.registry import Registry
from omnipipe.safetensors_bytes import write_module
from omnipipe.spec.loader import resolve_components
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.problems import problems_from

SPEC_KEY = "omnipipe.model_spec"
MAX_SPEC_CHARACTERS = 1 << 20  # a model spec is a few KB of JSON
MAX_PARAMETERS = 2_000_000_000  # 8 GB in fp32: far beyond any tokenizer trained here


@dataclass
class TokenizerOutput:
    """``reconstruction`` pixels (B, C, T, H, W) and the bottleneck's output."""

    reconstruction: torch.Tensor
    quantizer: QuantizerOutput


class Tokenizer(nn.Module):
    """Joint image–video tokenizer; pixels are (B, C, T, H, W) in [-1, 1], an image has T = 1.

    Components come from the registry: the patchifier is built with ``in_channels``, ``dim`` (encoder
    width) and ``out_dim`` (decoder width) and provides ``forward`` (pixels → tokens) and
    ``unpatchify``; attention kinds with ``dim`` and ``num_heads``; the quantizer with ``dim``
    (encoder width). A linear bridge maps encoder to decoder width when they differ.
    """

    def __init__(self, spec: ModelSpec, registry: Registry) -> None:
        super().__init__()
        self.spec = spec
        enc, dec = spec.encoder.width, spec.decoder.width
        self.patchifier = registry.build(
            "patchifier", spec.patchifier, in_channels=spec.in_channels, dim=enc, out_dim=dec
        )
        self.encoder = Stack(spec.encoder, registry)
        self.quantizer = registry.build("quantizer", spec.quantizer, dim=enc)
        self.bridge = Linear(enc, dec) if enc != dec else nn.Identity()
        init_weights(self.bridge)
        self.decoder = Stack(spec.decoder, registry, temporal_first=True)

    @classmethod
    def from_spec(cls, spec: ModelSpec, registry: Registry | None = None) -> Tokenizer:
        """Build (freshly initialised) from a model spec; the default registry holds the installed plugins."""
        if registry is None:
            from omnipipe.plugins import get_registry

            registry = get_registry()
        return cls(spec, registry)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, T, H, W) → latents before the bottleneck (B, T', H', W', D)."""
        return self.encoder(self.patchifier(x))

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        """Latents (B, T', H', W', D) → the bottleneck's output."""
        return self.quantizer(z)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Bottleneck output (B, T', H', W', D) → pixels (B, C, T, H, W)."""
        return self.patchifier.unpatchify(self.decoder(self.bridge(z_q)))

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        q = self.quantize(self.encode(x))
        return TokenizerOutput(self.decode(q.z_q), q)

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels → codes (B, T', H', W'); a continuous bottleneck gives its latents (B, T', H', W', C)."""
        q = self.quantize(self.encode(x))
        return q.codes if q.codes is not None else q.latents

    def detokenize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (or continuous latents) from ``tokenize`` → pixels (B, C, T, H, W), clamped to [-1, 1]."""
        return self.decode(self.quantizer.decode_codes(codes)).clamp(-1, 1)

    def layout(self, frames: int, height: int, width: int, num_classes: int = 0) -> TokenLayout:
        """How ``to_sequence`` lays out a clip of ``frames`` frames of ``height``×``width`` pixels: one grid (T', H', W')."""
        grid = self.patchifier.latent_grid(frames, height, width)
        size = self.quantizer.codebook_size
        if size is not None:
            return TokenLayout.grid_of("codes", grid, size, num_classes)
        return TokenLayout.grid_of("latents", grid, self.quantizer.params.latent_channels, num_classes)

    @staticmethod
    def to_sequence(tokens: torch.Tensor) -> torch.Tensor:
        """``tokenize``'s grid → one flat sequence (B, L) codes or (B, L, C) latents, raster order t → h → w."""
        return tokens.flatten(1, 3)

    @staticmethod
    def from_sequence(sequence: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """The inverse of ``to_sequence`` for ``layout``: what ``detokenize`` takes."""
        layout.check(sequence, "token sequence")
        return layout.to_grid(sequence)

    def save(self, path: str | Path) -> None:
        """Write weights and the model spec (JSON metadata) to a safetensors file, atomically."""
        write_module(path, self, {"format": "pt", SPEC_KEY: self.spec.model_dump_json()})

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, registry: Registry | None = None, device: str | torch.device = "cpu"
    ) -> Tokenizer:
        """Load a file written by ``save``: rebuild from its spec, load the weights, return in eval mode.

        The stored spec is validated (size, JSON, schema, registered components) and the model size it
        implies is bounded before anything is built; every problem is one OmnipipeError naming the file.
        """
        path = Path(path)
        if registry is None:
            from omnipipe.plugins import get_registry

            registry = get_registry()
        spec = stored_spec(path, registry)
        with torch.device("meta"):  # shapes only: counts the parameters without allocating them
            try:
                probe = cls(spec, registry)
                implied = sum(t.numel() for t in itertools.chain(probe.parameters(), probe.buffers()))
            except Exception:  # noqa: BLE001 - a plugin that cannot be built on the meta device is built for real
                implied = 0
        if implied > MAX_PARAMETERS:
            raise OmnipipeError(
                f"{path}: the stored model spec implies {implied / 1e9:.3g} billion parameters, more than the "
                f"{MAX_PARAMETERS / 1e9:g} billion omnipipe loads: the file is damaged or was not written by omnipipe"
            )
        model = cls(spec, registry)
        try:
            model.load_state_dict(load_file(str(path), device=str(device)))
        except (RuntimeError, SafetensorError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OmnipipeError(f"{path}: the weights do not match the stored model spec ({first[:300]})") from None
        return model.to(device).eval()


def stored_spec(path: Path, registry: Registry) -> ModelSpec:
    """The model spec in a checkpoint's metadata, validated against the schema and the registry."""
    if not path.is_file():
        raise OmnipipeError(f"{path}: tokenizer checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get(SPEC_KEY)
    except Exception as error:  # noqa: BLE001 - the safetensors reader fails on foreign files in several ways
        raise OmnipipeError(f"{path}: not a safetensors file ({str(error).strip() or type(error).__name__})") from None
    if text is None:
        raise OmnipipeError(f"{path}: not an omnipipe tokenizer checkpoint (no '{SPEC_KEY}' metadata)")
    if len(text) > MAX_SPEC_CHARACTERS:
        raise OmnipipeError(
            f"{path}: the stored model spec has {len(text):,} characters, more than the {MAX_SPEC_CHARACTERS:,} "
            "a spec can need: the file is damaged"
        )
    try:
        spec = ModelSpec.model_validate(json.loads(text))
    except (ValueError, RecursionError) as error:
        if isinstance(error, ValidationError):
            problems = problems_from(error, ModelSpec)
        else:
            raise OmnipipeError(f"{path}: the stored model spec is not valid JSON ({error})") from None
    else:
        problems = list(resolve_components(spec, (), registry))
    if problems:
        details = "; ".join(f"model.{p.path}: {p.message}" for p in problems)
        raise OmnipipeError(f"{path}: the stored model spec does not validate: {details}")
    return spec
