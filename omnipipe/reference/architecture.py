"""The reference network's hyper-parameters (its argparse flags) and the omnipipe model spec they mean."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from omnipipe.errors import OmnipipeError
from omnipipe.spec.model import ModelSpec

LOGIT_SCALE = 8.0  # the reference's cosine attention multiplies unit q·k by 8
NORM_EPS = 1e-5  # torch's LayerNorm default, used by every reference norm


class ReferenceArchitectureError(OmnipipeError):
    """Hyper-parameters the reference accepts but omnipipe cannot reproduce, or ones that do not validate."""


class ReferenceArchitecture(BaseModel):
    """The flags of ``vqgan_train.py`` that shape the network, with the reference's defaults.

    Flags that only steer training are ignored here (``recipe`` flags live in the pipelines).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    image_channels: int = 3
    embedding_dim: int = 256
    heads: int = 8
    dim_head: int = 64
    patch_embed: str = "linear"
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_depth: int = 4
    temporal_depth: int = 4
    enc_block: str | None = None  # default: 't' · spatial_depth
    dec_block: str | None = None  # default: 't' · spatial_depth
    twod_window_size: int = 4
    spatial_pos: str = "rel"
    causal_in_temporal_transformer: bool = False
    causal_in_peg: bool = False
    ff_mult: float = 4.0
    defer_temporal_pool: bool = False
    defer_spatial_pool: bool = False
    gen_upscale: int | None = None
    n_codes: int = 2048
    codebook_dim: int | None = None
    l2_code: bool = False
    use_external_codebook: bool = False
    no_random_restart: bool = False
    restart_thres: float = 1.0
    use_vae: bool = False
    kl_weight: float = 1e-6
    attention_path: Literal["sdpa", "einsum"] = "sdpa"
    """Not a flag: which branch of the reference's attention trained the weights. With torch ≥ 2.1 it takes
    ``F.scaled_dot_product_attention``, which never adds its position biases; its README says
    imagenet_only.ckpt was trained on the other (einsum) branch, which adds the continuous position bias
    (spatial_pos 'rel') in spatial blocks and ALiBi in causal temporal blocks."""

    @model_validator(mode="after")
    def _supported(self) -> ReferenceArchitecture:
        unsupported = {
            "patch_embed": self.patch_embed != "linear",
            "defer_temporal_pool": self.defer_temporal_pool,
            "defer_spatial_pool": self.defer_spatial_pool,
            "gen_upscale": self.gen_upscale is not None,
            "use_external_codebook": self.use_external_codebook,
            "causal_in_temporal_transformer": not self.causal_in_temporal_transformer,
            "codebook_dim": self.codebook_dim is None,
            "enc_block/dec_block": set(self.encoder_blocks + self.decoder_blocks) - {"t", "w"} != set(),
            "dim_head·heads": self.dim_head * self.heads != self.embedding_dim,
            "spatial_pos": self.spatial_pos not in ("rel", "rope"),
        }
        bad = [name for name, is_bad in unsupported.items() if is_bad]
        if bad:
            raise ValueError(
                "not reproducible in omnipipe: "
                + ", ".join(f"{name}={self._describe(name)}" for name in bad)
                + " (supported: linear patch embedding, no deferred pooling or upscaling, the internal codebook "
                "with codebook_dim set, causal temporal transformer, blocks of 't'/'w', dim_head·heads = embedding_dim)"
            )
        return self

    def _describe(self, name: str) -> str:
        if name == "enc_block/dec_block":
            return f"{self.encoder_blocks!r}/{self.decoder_blocks!r}"
        if name == "dim_head·heads":
            return f"{self.dim_head}·{self.heads}≠{self.embedding_dim}"
        return repr(getattr(self, name))

    @classmethod
    def from_args(cls, args: dict[str, Any], source: str) -> ReferenceArchitecture:
        """From the checkpoint's hyper-parameters; errors name ``source`` and the flag."""
        try:
            return cls.model_validate(args)
        except ValidationError as error:
            first = error.errors()[0]
            message = first["msg"].removeprefix("Value error, ")
            if first["loc"]:
                message = f"hyper-parameter {'.'.join(str(part) for part in first['loc'])}: {message}"
            raise ReferenceArchitectureError(f"{source}: {message}") from None

    @property
    def encoder_blocks(self) -> str:
        return self.enc_block if self.enc_block is not None else "t" * self.spatial_depth

    @property
    def decoder_blocks(self) -> str:
        return self.dec_block if self.dec_block is not None else "t" * self.spatial_depth

    @property
    def mlp_hidden(self) -> int:
        """The reference's GEGLU hidden width, ``int(ff_mult · 2/3 · dim)``."""
        return int(self.ff_mult * (2 / 3) * self.embedding_dim)

    def model_spec(self) -> ModelSpec:
        """The omnipipe model spec of the same network (same weights, same outputs)."""
        peg = "causal" if self.causal_in_peg else "centered"
        cosine = {
            "qk_norm": "cosine",
            "logit_scale": LOGIT_SCALE,
            "qkv_bias": False,
            "proj_bias": False,
            "peg": peg,
            "kv_prenorm": False,
        }
        einsum = self.attention_path == "einsum"
        full = {"type": "full", **cosine, "rope": "interleaved" if self.spatial_pos == "rope" else "none"}
        if einsum and self.spatial_pos == "rel":
            full["position_bias"] = "continuous"
        window = {
            "type": "window",
            "window_size": self.twod_window_size,
            "rope": "none",
            "relative_bias": True,
            "qkv_bias": False,
        }
        temporal = {"type": "causal", **cosine, "rope": False, "alibi": einsum, "peg_order": "reference_temporal"}

        def stack(blocks: str) -> dict[str, Any]:
            return {
                "width": self.embedding_dim,
                "num_heads": self.heads,
                "spatial": [dict(full) if block == "t" else dict(window) for block in blocks],
                "temporal": [dict(temporal) for _ in range(self.temporal_depth)],
                "mlp": "geglu",
                "mlp_ratio": self.ff_mult,
                "mlp_hidden": self.mlp_hidden,
                "mlp_bias": False,
                "norm": "layernorm_nobias",
                "mlp_norm": "layernorm",
                "norm_eps": NORM_EPS,
                "final_norm": "per_group",
            }

        if self.use_vae:
            quantizer: dict[str, Any] = {
                "type": "kl",
                "latent_channels": self.codebook_dim,
                "kl_weight": self.kl_weight,
                "reduction": "batch_mean",
            }
        else:
            quantizer = {
                "type": "vq",
                "codebook_size": self.n_codes,
                "code_dim": self.codebook_dim,
                "l2_normalize": self.l2_code,
                "normalize_codebook": False,
                "update": "ema",
                "decay": 0.99,
                "eps": 1e-7,
                "beta": 0.25,
                "dead_code_threshold": 0.0 if self.no_random_restart else self.restart_thres,
            }
        return ModelSpec.model_validate(
            {
                "in_channels": self.image_channels,
                "patchifier": {
                    "type": "omni",
                    "patch_size": self.patch_size,
                    "temporal_patch_size": self.temporal_patch_size,
                    "embed_norms": True,
                },
                "encoder": stack(self.encoder_blocks),
                "quantizer": quantizer,
                "decoder": stack(self.decoder_blocks),
            }
        )
