"""The ``generate`` section: token datasets, the generators trained on them, how they sample and are judged.

```yaml
generate:
  tokens:                       # omnipipe encode-tokens --dataset NAME
    digits: {tokenizer: joint, kind: image, resolution: [32, 32], classes: ["digit-*"]}
  generators:                   # omnipipe train-generator / sample / evaluate-generator --generator NAME
    ar:
      tokens: digits
      model: {type: ar, width: 128, depth: 4, num_heads: 4}
      train: {steps: 600, batch_size: 32}
      sample: {per_class: 10, settings: {cfg_scale: 2.0, temperature: 1.0}}
  evaluate: {metrics: [{type: gfid}, {type: class_consistency}]}
```
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, StringConstraints, ValidationError

from omnipipe.spec.base import PositiveInt, Resolution, StrictModel
from omnipipe.spec.component import GeneratorSpec, MetricSpec, QuantizerSpec
from omnipipe.spec.problems import Problem, problems_from
from omnipipe.spec.train import LoopSpec, OptimizerSpec

if TYPE_CHECKING:
    from omnipipe.registry import Registry
    from omnipipe.spec.experiment import Experiment

Grid = tuple[PositiveInt, PositiveInt, PositiveInt]
VariantName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]*$")]


class TokenDatasetSpec(StrictModel):
    """A token dataset: a trained tokenizer's tokens of the prepared clips of one kind, resolution and some classes."""

    tokenizer: str = Field(description="the training stage (train.stages key) or vtok entry whose model encodes")
    kind: Literal["image", "video"] = "image"
    resolution: Resolution | None = Field(default=None, description="one of data.resolutions (default: the first)")
    classes: list[str] | None = Field(
        default=None,
        description="class-name patterns (fnmatch, e.g. 'digit-*'): only clips of matching classes, relabelled "
        "0..K-1 in sorted name order; default: every clip, labels as prepared",
    )
    flip: bool = Field(default=False, description="train split: also encode each clip flipped left-right")
    batch_size: PositiveInt = Field(default=32, description="clips per tokenizer forward pass")
    chunk_clips: PositiveInt = Field(default=1024, description="clips per shard (the unit of resume and of ranks)")
    stream_chunk: PositiveInt | None = Field(
        default=8,
        description="clips longer than this many latent frames are encoded this many at a time (omnipipe.nn.streaming: "
        "the same codes, memory bounded by the chunk) when the tokenizer is causal in time; null: whole clips",
    )


class GeneratorTrainSpec(LoopSpec):
    """How a generator is trained (the same loop and guarantees as the tokenizer stages)."""

    optimizer: OptimizerSpec = Field(default_factory=lambda: OptimizerSpec(lr=3e-4, betas=(0.9, 0.95), weight_decay=0.05))
    eval_every: PositiveInt | None = Field(default=None, description="val loss (and bits/token) every N steps")
    eval_batches: PositiveInt = Field(default=4, description="val batches per evaluation")
    fsdp: bool = Field(
        default=False,
        description="shard the generator, its gradients and optimizer state over the torchrun ranks with FSDP2 "
        "(each transformer block a unit) instead of replicating it with DDP; checkpoints are then sharded",
    )


class SampleSpec(StrictModel):
    """What the sample stage draws, with a fixed seed."""

    per_class: PositiveInt = Field(default=10, description="class-conditional models: samples per class")
    count: PositiveInt = Field(default=100, description="unconditional models and frame prediction: samples")
    seed: int = 0
    batch_size: PositiveInt = 100
    prefix_frames: list[int] = Field(
        default_factory=lambda: [0],
        description="one sampling run per entry: 0 generates whole clips, k > 0 predicts the rest of val clips "
        "from their first k latent frames",
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="the generator's sampling settings")
    variants: dict[VariantName, dict[str, Any]] = Field(
        default_factory=dict,
        description="extra runs of whole samples, each with some settings changed (e.g. {steps-100: {steps: 100}}): "
        "run generate-<name>, judged like the others",
    )
    _sampling: BaseModel | None = PrivateAttr(default=None)
    _variants: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @property
    def sampling(self) -> BaseModel:
        """``settings`` validated against the generator's ``Sampling`` model (after the spec loaded)."""
        if self._sampling is None:
            raise RuntimeError("sample.settings were not validated against a registry")
        return self._sampling

    @property
    def variant_sampling(self) -> dict[str, BaseModel]:
        """Each of ``variants``: ``settings`` with its changes, validated like ``sampling``."""
        self.sampling  # noqa: B018 - raises when not validated
        return self._variants


class GeneratorEvalSpec(StrictModel):
    """How one generator's samples are judged (the metrics themselves are shared: ``generate.evaluate``)."""

    real_clips: PositiveInt | None = Field(
        default=None, description="real val clips in the reference set (the first N; default: all)"
    )
    metrics: list[MetricSpec] | None = Field(default=None, description="instead of generate.evaluate.metrics")


class GeneratorEntrySpec(StrictModel):
    """One generator: which token dataset, which component, how trained and sampled."""

    tokens: str = Field(description="a generate.tokens key")
    model: GeneratorSpec
    class_conditional: bool = Field(default=True, description="condition on the class (with a null class for CFG)")
    vocab_size: PositiveInt | None = Field(default=None, description="if given, must equal the tokenizer's codebook size")
    latent_channels: PositiveInt | None = Field(default=None, description="if given, must equal the KL tokenizer's latent channels")
    grid: Grid | None = Field(default=None, description="if given, must equal the token grid (T', H', W')")
    num_classes: PositiveInt | None = Field(default=None, description="if given, must equal the classes of the tokens")
    train: GeneratorTrainSpec
    sample: SampleSpec = Field(default_factory=SampleSpec)
    evaluate: GeneratorEvalSpec = Field(default_factory=GeneratorEvalSpec)


class GenerationEvalSpec(StrictModel):
    """How samples are judged: generation metrics against the val split, and the independent-token baseline."""

    metrics: list[MetricSpec] = Field(default_factory=list)
    allow_proxy: bool = Field(default=False, description="allow metrics from random networks; their keys then say proxy")
    batch_size: PositiveInt = 32
    baseline: bool = Field(
        default=True,
        description="also sample each token independently: codes from the code frequencies, latents from per-channel Gaussians",
    )


class GenerateSpec(StrictModel):
    tokens: dict[str, TokenDatasetSpec] = Field(default_factory=dict)
    generators: dict[str, GeneratorEntrySpec] = Field(default_factory=dict)
    evaluate: GenerationEvalSpec = Field(default_factory=GenerationEvalSpec)


def tokenizer_bottleneck(spec: Experiment, stage: str) -> tuple[str, int | None]:
    """("codes", codebook size) or ("latents", channels) of a training stage's tokenizer, read from its params;
    the size is None when the component's params do not say it."""
    from omnipipe.spec.vtok import vtok_bottleneck
    from omnipipe.train.tokenizer_task import stage_model_spec

    if stage in spec.vtok and stage not in spec.train.stages:  # a clash of names is reported by vtok_problems
        return vtok_bottleneck(spec, stage)
    return bottleneck_tokens(stage_model_spec(spec, spec.train.stages[stage]).quantizer)


def bottleneck_tokens(quantizer: QuantizerSpec) -> tuple[str, int | None]:
    """("codes", codebook size) or ("latents", channels) of a bottleneck, read from its params (size None when
    the component's params do not say it)."""
    params = quantizer.params
    if getattr(params, "latent_channels", None) is not None:
        return "latents", params.latent_channels
    return "codes", getattr(params, "codebook_size", None)


def token_grid(spec: Experiment, dataset: TokenDatasetSpec) -> tuple[int, int, int] | None:
    """The tokenizer grid (T', H', W') of a token dataset, when the patchifier declares its patch sizes (None for
    a VTok: its sequence is not one grid)."""
    params = spec.model.patchifier.params
    if dataset.tokenizer in spec.vtok:
        return None
    patch, tube = getattr(params, "patch_size", None), getattr(params, "temporal_patch_size", None)
    if not isinstance(patch, int) or not isinstance(tube, int):
        return None
    height, width = dataset.resolution or spec.data.resolutions[0]
    frames = 1 if dataset.kind == "image" else 1 + (spec.data.clip_frames - 1) // tube
    return frames, height // patch, width // patch


def generation_problems(spec: Experiment, registry: Registry) -> Iterator[Problem]:
    """Cross-checks of the ``generate`` section that the spec alone can decide; validates sampling settings."""
    section = spec.generate
    for name, dataset in section.tokens.items():
        at = ("generate", "tokens", name)
        if dataset.tokenizer not in spec.train.stages and dataset.tokenizer not in spec.vtok:
            known = ", ".join([*spec.train.stages, *spec.vtok])
            yield Problem((*at, "tokenizer"), f"'{dataset.tokenizer}' is not a training stage or vtok entry ({known})")
        elif dataset.tokenizer in spec.vtok and dataset.kind != "video":
            yield Problem((*at, "kind"), f"VTok '{dataset.tokenizer}' encodes clips of at least 2 frames: kind must be video")
        if dataset.resolution is not None and tuple(dataset.resolution) not in [tuple(r) for r in spec.data.resolutions]:
            yield Problem((*at, "resolution"), f"{list(dataset.resolution)} is not among data.resolutions")
    for name, entry in section.generators.items():
        yield from _generator_problems(spec, registry, name, entry)
    lists = [(("generate", "evaluate", "metrics"), section.evaluate.metrics)]
    lists += [(("generate", "generators", name, "evaluate", "metrics"), entry.evaluate.metrics or [])
              for name, entry in section.generators.items()]  # fmt: skip
    for at, metrics in lists:
        for index, metric in enumerate(metrics):
            if getattr(registry.get("metric", metric.type).cls, "role", None) != "generation":
                yield Problem((*at, index, "type"),
                              f"metric '{metric.type}' judges reconstructions, not samples (use it under evaluate.metrics)")  # fmt: skip


def _generator_problems(spec: Experiment, registry: Registry, name: str, entry: GeneratorEntrySpec) -> Iterator[Problem]:
    at = ("generate", "generators", name)
    cls = registry.get("generator", entry.model.type).cls
    try:
        entry.sample._sampling = cls.Sampling.model_validate(entry.sample.settings)
    except ValidationError as error:
        for problem in problems_from(error, cls.Sampling):
            yield Problem((*at, "sample", "settings", *problem.loc), problem.message)
        return
    for variant, changes in entry.sample.variants.items():
        try:
            entry.sample._variants[variant] = cls.Sampling.model_validate({**entry.sample.settings, **changes})
        except ValidationError as error:
            for problem in problems_from(error, cls.Sampling):
                yield Problem((*at, "sample", "variants", variant, *problem.loc), problem.message)
    if not entry.class_conditional and getattr(entry.sample._sampling, "cfg_scale", 1.0) != 1.0:
        yield Problem((*at, "sample", "settings", "cfg_scale"),
                      "classifier-free guidance needs a class-conditional model (class_conditional is false)")  # fmt: skip
    dataset = spec.generate.tokens.get(entry.tokens)
    if dataset is None:
        known = ", ".join(spec.generate.tokens) or "none"
        yield Problem((*at, "tokens"), f"'{entry.tokens}' is not a generate.tokens entry (entries: {known})")
        return
    if dataset.tokenizer not in spec.train.stages and dataset.tokenizer not in spec.vtok:
        return  # reported at the token dataset
    kind, size = tokenizer_bottleneck(spec, dataset.tokenizer)
    wanted = getattr(cls, "token_kind", None)
    if wanted is not None and wanted != kind:
        yield Problem((*at, "model", "type"),
                      f"generator '{entry.model.type}' models {wanted}, but tokenizer stage '{dataset.tokenizer}' gives {kind}")  # fmt: skip
    elif entry.vocab_size is not None and size is not None and kind == "codes" and entry.vocab_size != size:
        yield Problem((*at, "vocab_size"),
                      f"{entry.vocab_size} does not match the codebook size {size} of tokenizer stage '{dataset.tokenizer}'")  # fmt: skip
    elif entry.latent_channels is not None and size is not None and kind == "latents" and entry.latent_channels != size:
        yield Problem((*at, "latent_channels"),
                      f"{entry.latent_channels} does not match the {size} latent channels of tokenizer stage '{dataset.tokenizer}'")  # fmt: skip
    grid = token_grid(spec, dataset)
    if entry.grid is not None and grid is not None and tuple(entry.grid) != grid:
        yield Problem((*at, "grid"), f"{list(entry.grid)} does not match the token grid {list(grid)} of '{entry.tokens}'")
    frames = grid[0] if grid is not None else None
    if dataset.tokenizer in spec.vtok:
        from omnipipe.spec.vtok import vtok_token_frames

        frames = vtok_token_frames(spec, dataset.tokenizer)
    for index, prefix in enumerate(entry.sample.prefix_frames):
        if prefix < 0 or (frames is not None and prefix >= frames):
            limit = f"0 .. {frames - 1}" if frames is not None else "≥ 0"
            yield Problem((*at, "sample", "prefix_frames", index),
                          f"{prefix} latent frames given: must be {limit} (the tokens of '{entry.tokens}' have {frames} latent frames)")  # fmt: skip
