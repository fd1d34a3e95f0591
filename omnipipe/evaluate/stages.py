"""Which trained tokenizers an evaluation measures, and how a report names each one (path, content hash, steps)."""
from __future__ import annotations

from typing import Any

from safetensors import safe_open

from omnipipe.metrics.packaged_weights import sha256_of
from omnipipe.nn.tokenizer import SPEC_KEY
from omnipipe.spec.experiment import Experiment
from omnipipe.train.paths import StagePaths


def bottleneck_of(spec: Experiment, stage: str) -> str:
    """The bottleneck type a stage trains: the last ``quantizer`` swap up to it, else the model's."""
    quantizer = spec.model.quantizer
    for name, settings in spec.train.stages.items():
        quantizer = settings.quantizer or quantizer
        if name == stage:
            break
    return quantizer.type


def evaluated_stages(spec: Experiment, stage: str | None = None) -> list[str]:
    """``stage`` alone if given; else ``evaluate.stages``; else the last stage of each bottleneck type, in training order."""
    if stage is not None:
        return [stage]
    if spec.evaluate.stages:
        return list(spec.evaluate.stages)
    last = {bottleneck_of(spec, name): name for name in spec.train.stages}
    return [name for name in spec.train.stages if name in last.values()]


def checkpoint_identity(spec: Experiment, stage: str) -> dict[str, Any]:
    """What was measured: the model file, its SHA-256, the stage's bottleneck and steps, and the file's own metadata."""
    path = StagePaths.of(spec, stage).model_file
    with safe_open(str(path), framework="pt") as handle:
        metadata = {k: v for k, v in (handle.metadata() or {}).items() if k not in (SPEC_KEY, "format")}
    return {
        "path": str(path),
        "sha256": sha256_of(path),
        "bottleneck": bottleneck_of(spec, stage),
        "steps": spec.train.stages[stage].steps,
        **({"metadata": metadata} if metadata else {}),
    }
