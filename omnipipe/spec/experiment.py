"""The whole experiment: one spec file under ``pipelines/``."""
from __future__ import annotations

from pydantic import Field, model_validator

from omnipipe.spec.base import StrictModel
from omnipipe.spec.data import DataSpec
from omnipipe.spec.evaluate import EvaluateSpec
from omnipipe.spec.generate import GenerateSpec
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.problems import SpecValueError
from omnipipe.spec.train import TrainSpec
from omnipipe.spec.vtok import VTokSpec


class OutputsSpec(StrictModel):
    """Where stage outputs go (checkpoints, metrics, plots); relative to the working directory."""

    dir: str = "outputs"


class Experiment(StrictModel):
    """An experiment spec: data → model → training stages → evaluation → generators."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    seed: int = Field(default=0, ge=0, lt=2**32, strict=True, description="every RNG is seeded from it")
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    generate: GenerateSpec = Field(default_factory=GenerateSpec)
    vtok: dict[str, VTokSpec] = Field(default_factory=dict, description="VTok tokenizers on trained stages (docs/vtok.md)")

    @model_validator(mode="after")
    def _stage_resolutions_are_prepared(self) -> Experiment:
        prepared = [tuple(r) for r in self.data.resolutions]
        for name, stage in self.train.stages.items():
            for index, resolution in enumerate(stage.resolutions or []):
                if tuple(resolution) not in prepared:
                    raise SpecValueError(
                        f"{list(resolution)} is not among data.resolutions {[list(r) for r in prepared]}, "
                        "so no data is prepared for it",
                        ("train", "stages", name, "resolutions", index),
                    )
        return self

    @model_validator(mode="after")
    def _evaluated_stages_and_resolutions_exist(self) -> Experiment:
        for index, stage in enumerate(self.evaluate.stages or []):
            if stage not in self.train.stages:
                raise SpecValueError(
                    f"'{stage}' is not a training stage ({', '.join(self.train.stages)})", ("evaluate", "stages", index)
                )
        prepared = [tuple(r) for r in self.data.resolutions]
        for index, resolution in enumerate(self.evaluate.resolutions or []):
            if tuple(resolution) not in prepared:
                raise SpecValueError(
                    f"{list(resolution)} is not among data.resolutions {[list(r) for r in prepared]}",
                    ("evaluate", "resolutions", index),
                )
        return self
