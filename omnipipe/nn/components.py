"""Registration of the builtin network components."""
from __future__ import annotations

from omnipipe.nn.kl import DiagonalGaussian
from omnipipe.nn.patchify import OmniPatchifier
from omnipipe.nn.spatial_attention import FullAttention, WindowAttention
from omnipipe.nn.temporal_attention import CausalAttention
from omnipipe.nn.vq import VectorQuantizer
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    """Add the patchifier, attention kinds and quantizers of the tokenizer to ``registry``."""
    registry.add("patchifier", "omni", OmniPatchifier)
    registry.add("attention", "full", FullAttention)
    registry.add("attention", "window", WindowAttention)
    registry.add("attention", "causal", CausalAttention)
    registry.add("quantizer", "vq", VectorQuantizer)
    registry.add("quantizer", "kl", DiagonalGaussian)
