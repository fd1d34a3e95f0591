"""The ``train`` section: loss terms and the progressive training stages."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from omnipipe.spec.base import NonNegativeInt, PositiveInt, Real, Resolution, StrictModel, Weight
from omnipipe.spec.problems import SpecValueError
from omnipipe.spec.component import DiscriminatorSpec, LossSpec, QuantizerSpec


Beta = Annotated[float, Field(ge=0, lt=1, strict=True, allow_inf_nan=False)]  # what Adam accepts


class OptimizerSpec(StrictModel):
    name: Literal["adam", "adamw"] = "adamw"
    lr: Real = Field(default=1e-4, gt=0)
    betas: tuple[Beta, Beta] = (0.9, 0.99)
    weight_decay: Real = Field(default=0.0, ge=0)


class ScheduleSpec(StrictModel):
    name: Literal["constant", "cosine"] = "cosine"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: Real = Field(default=0.1, ge=0, le=1)


class LoopSpec(StrictModel):
    """How long and how any model is trained: what the shared training loop needs (tokenizer and generator stages)."""

    steps: PositiveInt
    batch_size: PositiveInt
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    grad_clip: Real | None = Field(default=1.0, gt=0)
    grad_accum: PositiveInt = 1
    ema_decay: Real | None = Field(default=None, gt=0, lt=1)
    checkpoint_every: PositiveInt = 100
    keep_last: PositiveInt = 2
    eval_every: PositiveInt | None = Field(
        default=None,
        description="every this many steps (and at the last), reconstruction PSNR/LPIPS of a fixed val batch "
        "per kind and resolution, and a picture of them, in the live log",
    )


class StageSpec(LoopSpec):
    """One training stage (one DVC stage): what data, how long, initialised from which stage.

    ``videos`` (video clips only) is for models that only make sense on clips (VTok)."""

    data: Literal["images", "joint", "videos"]
    resolutions: list[Resolution] | None = None
    init_from: str | None = None
    quantizer: QuantizerSpec | None = Field(
        default=None, description="replaces the model's bottleneck from this stage on (VQ → KL fine-tuning)"
    )


class TrainSpec(StrictModel):
    """Loss terms shared by all stages and the stages themselves, run in the order written."""

    losses: dict[str, LossSpec] = Field(min_length=1)
    quantizer_loss_weights: dict[str, Weight] = Field(default_factory=dict)
    discriminators: dict[Literal["image", "video"], DiscriminatorSpec] = Field(
        default_factory=dict,
        description="critics of the 'gan' loss: 'image' judges T = 1 batches, 'video' clips; "
        "either one alone judges both",
    )
    stages: dict[str, StageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _init_from_earlier_stage(self) -> TrainSpec:
        seen: list[str] = []
        for name, stage in self.stages.items():
            if stage.init_from is not None and stage.init_from not in seen:
                earlier = ", ".join(seen) or "none"
                raise SpecValueError(
                    f"'{stage.init_from}' is not an earlier stage (earlier: {earlier})",
                    ("stages", name, "init_from"),
                )
            seen.append(name)
        return self
