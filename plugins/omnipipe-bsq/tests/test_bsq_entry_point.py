"""After ``pip install ./plugins/omnipipe-bsq`` the quantizer is found through its entry point."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import omnipipe
from omnipipe.plugin_testing import declared_entry_points, quantizer_from_spec, registered_entry, require_distribution

DIST = "omnipipe-bsq"
SPEC = Path(__file__).resolve().parents[3] / "pipelines" / "tiny-bsq.yaml"


@pytest.fixture(scope="module")
def registry() -> omnipipe.Registry:
    require_distribution(DIST)
    return omnipipe.load_registry()


def test_bsq_entry_point_is_declared() -> None:
    assert declared_entry_points(require_distribution(DIST)) == [("bsq", "omnipipe_bsq.plugin")]


def test_bsq_is_registered_with_its_distribution(registry: omnipipe.Registry) -> None:
    entry = registered_entry(registry, "quantizer", "bsq", DIST)
    assert entry.cls.__module__ == "omnipipe_bsq.bsq"
    assert entry.doc.startswith("BSQ bottleneck")


def test_bsq_params_are_validated_by_the_registry(registry: omnipipe.Registry) -> None:
    with pytest.raises(omnipipe.RegistryError, match="code_bts"):
        registry.build("quantizer", {"type": "bsq", "code_bts": 8}, dim=4)
    with pytest.raises(omnipipe.RegistryError, match="does not divide"):
        registry.build("quantizer", {"type": "bsq", "code_bits": 10, "entropy_group_bits": 4}, dim=4)


def test_bsq_tiny_spec_builds(registry: omnipipe.Registry) -> None:
    quantizer, width = quantizer_from_spec(SPEC, registry)
    assert quantizer.codebook_size == 256
    out = quantizer(torch.randn(2, 1, 8, 8, width))
    assert out.codes.shape == (2, 1, 8, 8)
