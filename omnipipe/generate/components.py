"""Registration of the builtin generators and generation metrics."""
from __future__ import annotations

from omnipipe.generate.ar import ARGenerator
from omnipipe.generate.ldm import LatentDiffusionGenerator
from omnipipe.generate.masked import MaskedGenerator
from omnipipe.generate.metrics.components import register as register_generation_metrics
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    registry.add("generator", "ar", ARGenerator)
    registry.add("generator", "masked", MaskedGenerator)
    registry.add("generator", "ldm", LatentDiffusionGenerator)
    register_generation_metrics(registry)
