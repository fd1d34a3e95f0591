"""The ``vtok`` section: VTok tokenizers built on a trained OmniTokenizer stage, one DVC stage each.

```yaml
vtok:
  vtok:                                  # omnipipe train-vtok --name vtok → <outputs>/<name>/vtok/model.safetensors
    tokenizer: joint                     # the train.stages key whose (temporal-causal) tokenizer it builds on
    model:
      residual_quantizer: {type: vq, codebook_size: 64, code_dim: 8}
      predictor: {width: 64, num_heads: 4, spatial: [{type: full}, {type: full}]}
    train: {steps: 300, batch_size: 8}
```
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from omnipipe.spec.base import PositiveInt, Resolution, StrictModel
from omnipipe.spec.component import LossSpec, MetricSpec, QuantizerSpec
from omnipipe.spec.model import StackSpec
from omnipipe.spec.problems import Problem, SpecValueError
from omnipipe.spec.train import LoopSpec

if TYPE_CHECKING:
    from omnipipe.spec.experiment import Experiment

ResidualUnit = Literal["frame", "latent_frame"]
Pooling = Literal["mean", "query"]


class VTokTrainSpec(LoopSpec):
    """How a VTok stage is trained: on video clips only, at ``resolutions`` (default: ``data.resolutions``)."""

    resolutions: list[Resolution] | None = None


class VTokCompareSpec(StrictModel):
    """``omnipipe compare-vtok``: VTok against its plain tokenizer on the val clips."""

    metrics: list[MetricSpec] = Field(
        default_factory=list, description="reconstruction metrics of the later frames (psnr, ssim, lpips, fvd)"
    )
    motion_classes: list[str] = Field(
        default_factory=lambda: ["digit-*"],
        description="class-name patterns (fnmatch) of clips with one bright object on black (moving digits): "
        "their object's position error is measured",
    )
    allow_proxy: bool = False
    batch_size: PositiveInt = 16
    visual_samples: PositiveInt = Field(default=6, description="clips shown side by side in the mp4s and the PNG")


class VTokModelSpec(StrictModel):
    """What a VTok model adds to its OmniTokenizer (stored in the checkpoint next to the tokenizer's spec)."""

    residual_unit: ResidualUnit = Field(
        default="frame",
        description="frame: one residual token per later frame (T − 1); latent_frame: one per later latent frame (T' − 1)",
    )
    pooling: Pooling = Field(default="mean", description="how a frame's feature difference becomes one vector")
    residual_width: PositiveInt = Field(default=64, description="width of the residual MLP and of the residual token")
    residual_quantizer: QuantizerSpec = Field(
        description="the residual tokens' own bottleneck, built with dim = residual_width: a small codebook "
        "(codes, for token generators) or a continuous one (latents, for latent generators)"
    )
    predictor: StackSpec = Field(description="the transformer that predicts a later frame's latent grid (spatial only)")

    @model_validator(mode="after")
    def _predictor_is_spatial(self) -> VTokModelSpec:
        if self.predictor.temporal:
            raise SpecValueError(
                "the predictor works on one frame's grid at a time: no temporal attention", ("predictor", "temporal")
            )
        return self


class VTokSpec(StrictModel):
    """A VTok tokenizer: the key frame's tokens plus one residual token per later frame (or latent frame)."""

    tokenizer: str = Field(description="the training stage (train.stages key) whose tokenizer encodes the key frame")
    tokenizer_training: Literal["frozen", "finetune"] = Field(
        default="frozen", description="frozen: the OmniTokenizer's weights stay; finetune: trained with VTok's loss"
    )
    model: VTokModelSpec
    latent_weight: float = Field(default=1.0, ge=0, description="weight of the latent loss (MSE to the tokenizer's latents)")
    losses: dict[str, LossSpec] = Field(
        default_factory=lambda: {"recon": LossSpec(type="l1")}, description="pixel losses on the decoded clip"
    )
    quantizer_loss_weights: dict[str, float] = Field(
        default_factory=dict, description="bottleneck terms: the residual one's, and the tokenizer's when fine-tuned"
    )
    train: VTokTrainSpec
    compare: VTokCompareSpec = Field(default_factory=VTokCompareSpec)


def vtok_problems(spec: Experiment) -> Iterator[Problem]:
    """Cross-checks of the ``vtok`` section that the spec alone can decide."""
    prepared = [tuple(r) for r in spec.data.resolutions]
    for name, entry in spec.vtok.items():
        at = ("vtok", name)
        if name in spec.train.stages:
            yield Problem(at, f"'{name}' is also a train.stages key: both would write {spec.outputs.dir}/{spec.name}/{name}/")
        if entry.tokenizer not in spec.train.stages:
            yield Problem((*at, "tokenizer"), f"'{entry.tokenizer}' is not a training stage ({', '.join(spec.train.stages)})")
        else:
            yield from _bottleneck_problems(spec, name, entry)
        if spec.data.clip_frames < 2:
            yield Problem(("data", "clip_frames"), f"vtok '{name}' needs clips of at least 2 frames (a key frame and a later one)")
        for index, resolution in enumerate(entry.train.resolutions or []):
            if tuple(resolution) not in prepared:
                yield Problem((*at, "train", "resolutions", index), f"{list(resolution)} is not among data.resolutions")


def _bottleneck_problems(spec: Experiment, name: str, entry: VTokSpec) -> Iterator[Problem]:
    """Key and residual tokens must be of one kind (codes or latents), latents of one channel count."""
    from omnipipe.spec.generate import bottleneck_tokens, tokenizer_bottleneck

    key_kind, key_size = tokenizer_bottleneck(spec, entry.tokenizer)
    own_kind, own_size = bottleneck_tokens(entry.model.residual_quantizer)
    at = ("vtok", name, "model", "residual_quantizer", "type")
    if key_kind != own_kind:
        yield Problem(at, f"tokenizer stage '{entry.tokenizer}' gives {key_kind} but this bottleneck gives {own_kind}: "
                          "one sequence holds one kind of token")  # fmt: skip
    elif key_kind == "latents" and key_size != own_size:
        yield Problem((*at[:-1], "latent_channels"),
                      f"{own_size} channels, but the key frame's latents (stage '{entry.tokenizer}') have {key_size}")  # fmt: skip


def vtok_bottleneck(spec: Experiment, name: str) -> tuple[str, int | None]:
    """("codes", key + residual vocabulary) or ("latents", channels) of VTok entry ``name``'s sequences."""
    from omnipipe.spec.generate import bottleneck_tokens, tokenizer_bottleneck

    entry = spec.vtok[name]
    kind, size = tokenizer_bottleneck(spec, entry.tokenizer)
    _, own = bottleneck_tokens(entry.model.residual_quantizer)
    if kind == "latents" or size is None or own is None:
        return kind, size
    return kind, size + own


def vtok_token_frames(spec: Experiment, name: str) -> int | None:
    """Frames a VTok sequence of a ``data.clip_frames`` clip spans: the key frame and one per residual token."""
    entry = spec.vtok[name]
    frames = spec.data.clip_frames
    if entry.model.residual_unit == "frame":
        return frames
    tube = getattr(spec.model.patchifier.params, "temporal_patch_size", None)
    return 1 + (frames - 1) // tube if isinstance(tube, int) else None
