"""Registration of the builtin generation metrics."""
from __future__ import annotations

from omnipipe.generate.metrics.class_consistency import ClassConsistency
from omnipipe.generate.metrics.frechet import GenerationFID, GenerationFVD
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    registry.add("metric", "gfid", GenerationFID)
    registry.add("metric", "gfvd", GenerationFVD)
    registry.add("metric", "class_consistency", ClassConsistency)
