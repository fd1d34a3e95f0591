"""Every tensor of a reference OmniTokenizer state dict: its shape, how it is drawn, where it goes in omnipipe.

One table serves both directions: ``convert`` imports a checkpoint by it, ``synthetic`` draws seeded
weights by it. Tensors with the same ``target`` are concatenated along dim 0 in table order (the
reference's ``to_q`` and ``to_kv`` become omnipipe's fused ``qkv``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from omnipipe.reference.architecture import ReferenceArchitecture

Role = Literal[
    "weight",  # a linear or conv weight: normal with std 1/sqrt(fan-in)
    "bias",  # small normal
    "gain",  # a norm's or cosine attention's scale: around 1
    "shift",  # a learned LayerNorm beta: small normal
    "zero_beta",  # a LayerNorm beta the reference keeps as a zero buffer: must be 0, not imported
    "position_table",  # Swin relative-position bias table
    "position_index",  # Swin relative-position index buffer: must equal the computed one, not imported
    "codes",  # codebook vectors and their EMA sums
    "counts",  # EMA cluster sizes / usage
]

IGNORED_PREFIXES = ("image_discriminator.", "video_discriminator.", "perceptual_model.")
"""Training-only parts of a reference checkpoint (discriminators, LPIPS), not part of the tokenizer."""


@dataclass(frozen=True)
class RefTensor:
    """One reference state-dict entry; ``target`` None means it is not imported (``note`` says why)."""

    key: str
    shape: tuple[int, ...]
    role: Role
    target: str | None
    note: str = ""


def _norm(prefix: str, dim: int, target: str, zero_beta: bool) -> list[RefTensor]:
    """A reference norm: ``LayerNorm`` (gamma, beta buffer = 0) or ``nn.LayerNorm`` (weight, bias)."""
    if zero_beta:
        return [
            RefTensor(f"{prefix}.gamma", (dim,), "gain", f"{target}.weight"),
            RefTensor(f"{prefix}.beta", (dim,), "zero_beta", None, "β fixed at 0 (layernorm_nobias)"),
        ]
    return [
        RefTensor(f"{prefix}.weight", (dim,), "gain", f"{target}.weight"),
        RefTensor(f"{prefix}.bias", (dim,), "shift", f"{target}.bias"),
    ]


def _linear(prefix: str, out: int, inp: int, target: str | None, bias: bool, note: str = "") -> list[RefTensor]:
    entries = [RefTensor(f"{prefix}.weight", (out, inp), "weight", target and f"{target}.weight", note)]
    if bias:
        entries.append(RefTensor(f"{prefix}.bias", (out,), "bias", target and f"{target}.bias", note))
    return entries


def _feed_forward(prefix: str, arch: ReferenceArchitecture, target: str) -> list[RefTensor]:
    dim, hidden = arch.embedding_dim, arch.mlp_hidden
    return [
        *_norm(f"{prefix}.0", dim, f"{target}.norm2", zero_beta=False),
        *_linear(f"{prefix}.1", 2 * hidden, dim, f"{target}.mlp.fc_in", bias=False),
        *_linear(f"{prefix}.4", dim, hidden, f"{target}.mlp.fc_out", bias=False),
    ]


def _full_block(prefix: str, arch: ReferenceArchitecture, target: str, spatial: bool) -> list[RefTensor]:
    """A 't' block: PEG, cosine attention, feed-forward."""
    dim, heads, head = arch.embedding_dim, arch.heads, arch.dim_head
    attn, unused = f"{prefix}.1", "unused by the reference: no cross-attention context"
    entries = [
        RefTensor(f"{prefix}.0.dsconv.weight", (dim, 1, 3, 3, 3), "weight", f"{target}.attn.peg.conv.weight"),
        RefTensor(f"{prefix}.0.dsconv.bias", (dim,), "bias", f"{target}.attn.peg.conv.bias"),
        *_norm(f"{attn}.norm", dim, f"{target}.norm1", zero_beta=True),
        RefTensor(f"{attn}.context_norm.gamma", (dim,), "gain", None, unused),
        RefTensor(f"{attn}.context_norm.beta", (dim,), "zero_beta", None, unused),
        RefTensor(f"{attn}.to_q.weight", (heads * head, dim), "weight", f"{target}.attn.qkv.weight"),
        RefTensor(f"{attn}.to_kv.weight", (2 * heads * head, dim), "weight", f"{target}.attn.qkv.weight"),
        RefTensor(f"{attn}.q_scale", (head,), "gain", f"{target}.attn.q_scale"),
        RefTensor(f"{attn}.k_scale", (head,), "gain", f"{target}.attn.k_scale"),
        RefTensor(f"{attn}.to_out.weight", (dim, heads * head), "weight", f"{target}.attn.proj.weight"),
    ]
    # every reference attention with spatial_pos 'rel' (the temporal transformers always: their default) builds
    # a continuous position bias net; temporal blocks never use it, spatial ones only on the einsum path
    if not spatial or arch.spatial_pos == "rel":
        used = spatial and arch.attention_path == "einsum"
        note = (
            ""
            if used
            else "unused by the reference: its SDPA attention path never adds this bias"
            if spatial
            else "unused by the reference: a spatial position bias in a temporal block"
        )
        net, ours = f"{attn}.spatial_rel_pos_bias.net", f"{target}.attn.position_bias.net"
        entries += [
            *_linear(f"{net}.0.0", dim, 2, f"{ours}.0" if used else None, bias=True, note=note),
            *_linear(f"{net}.1.0", dim, dim, f"{ours}.2" if used else None, bias=True, note=note),
            *_linear(f"{net}.2", heads, dim, f"{ours}.4" if used else None, bias=True, note=note),
        ]
    return entries + _feed_forward(f"{prefix}.3", arch, target)


def _window_block(prefix: str, arch: ReferenceArchitecture, target: str) -> list[RefTensor]:
    """A 'w' block: Swin window attention with relative position bias, feed-forward."""
    dim, heads, ws = arch.embedding_dim, arch.heads, arch.twod_window_size
    attn = f"{prefix}.1"
    return [
        *_norm(f"{attn}.norm", dim, f"{target}.norm1", zero_beta=True),
        RefTensor(
            f"{attn}.relative_position_bias_table", ((2 * ws - 1) ** 2, heads), "position_table",
            f"{target}.attn.relative_bias.table",
        ),
        RefTensor(f"{attn}.relative_position_index", (ws * ws, ws * ws), "position_index", None, "recomputed"),
        *_linear(f"{attn}.qkv", 3 * dim, dim, f"{target}.attn.qkv", bias=False),
        *_linear(f"{attn}.proj", dim, dim, f"{target}.attn.proj", bias=True),
        *_feed_forward(f"{prefix}.3", arch, target),
    ]


def _transformer(
    prefix: str, blocks: str, arch: ReferenceArchitecture, target: str, first: int, norm_target: str, spatial: bool
) -> list[RefTensor]:
    """A reference ``Transformer``: its blocks become omnipipe blocks ``first``, ``first + 1``, … of ``target``."""
    entries: list[RefTensor] = []
    for i, block in enumerate(blocks):
        ours = f"{target}.blocks.{first + i}"
        if block == "t":
            entries += _full_block(f"{prefix}.layers.{i}", arch, ours, spatial)
        else:
            entries += _window_block(f"{prefix}.layers.{i}", arch, ours)
    return entries + _norm(f"{prefix}.norm_out", arch.embedding_dim, f"{target}.{norm_target}", zero_beta=True)


def reference_layout(arch: ReferenceArchitecture) -> list[RefTensor]:
    """The full state-dict table of the tokenizer part of a reference ``VQGAN`` with ``arch``."""
    dim, c, p, pt = arch.embedding_dim, arch.image_channels, arch.patch_size, arch.temporal_patch_size
    code_dim, temporal = arch.codebook_dim or 0, "t" * arch.temporal_depth
    enc, dec = arch.encoder_blocks, arch.decoder_blocks
    entries: list[RefTensor] = []
    for ref, ours, patch in (("to_patch_emb_first_frame", "first", c * p * p), ("to_patch_emb", "rest", c * pt * p * p)):
        entries += [
            *_norm(f"encoder.{ref}.1", patch, f"patchifier.norm_{ours}_in", zero_beta=False),
            *_linear(f"encoder.{ref}.2", dim, patch, f"patchifier.embed_{ours}", bias=True),
            *_norm(f"encoder.{ref}.3", dim, f"patchifier.norm_{ours}_out", zero_beta=False),
        ]
    entries += _transformer("encoder.enc_spatial_transformer", enc, arch, "encoder", 0, "group_norm", spatial=True)
    entries += _transformer("encoder.enc_temporal_transformer", temporal, arch, "encoder", len(enc), "norm", spatial=False)
    entries += _transformer("decoder.dec_temporal_transformer", temporal, arch, "decoder", 0, "group_norm", spatial=False)
    entries += _transformer("decoder.dec_spatial_transformer", dec, arch, "decoder", len(temporal), "norm", spatial=True)
    entries += _linear("decoder.to_pixels_first_frame.0", c * p * p, dim, "patchifier.head_first", bias=True)
    entries += _linear("decoder.to_pixels.0", c * pt * p * p, dim, "patchifier.head_rest", bias=True)
    entries += _linear("pre_vq_conv.1", code_dim * (2 if arch.use_vae else 1), dim, "quantizer.proj_in", bias=True)
    entries += _linear("post_vq_conv.1", dim, code_dim, "quantizer.proj_out", bias=True)
    vq = not arch.use_vae
    vae_note = "the codebook a VAE checkpoint still carries, unused"
    n = arch.n_codes
    entries += [
        RefTensor("codebook.embeddings", (n, code_dim), "codes", "quantizer.codebook" if vq else None, "" if vq else vae_note),
        RefTensor("codebook.N", (n,), "counts", "quantizer.cluster_size" if vq else None, "" if vq else vae_note),
        RefTensor("codebook.z_avg", (n, code_dim), "codes", "quantizer.embed_sum" if vq else None, "" if vq else vae_note),
        RefTensor("codebook.codebook_usage", (n,), "counts", None, "usage statistics for logging"),
    ]
    return entries
