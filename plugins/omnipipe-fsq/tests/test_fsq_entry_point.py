"""After ``pip install ./plugins/omnipipe-fsq`` the quantizer is found through its entry point."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import omnipipe
from omnipipe.plugin_testing import declared_entry_points, quantizer_from_spec, registered_entry, require_distribution

DIST = "omnipipe-fsq"
SPEC = Path(__file__).resolve().parents[3] / "pipelines" / "tiny-fsq.yaml"


@pytest.fixture(scope="module")
def registry() -> omnipipe.Registry:
    require_distribution(DIST)
    return omnipipe.load_registry()


def test_fsq_entry_point_is_declared() -> None:
    assert declared_entry_points(require_distribution(DIST)) == [("fsq", "omnipipe_fsq.plugin")]


def test_fsq_is_registered_with_its_distribution(registry: omnipipe.Registry) -> None:
    entry = registered_entry(registry, "quantizer", "fsq", DIST)
    assert entry.cls.__module__ == "omnipipe_fsq.fsq"
    assert entry.doc.startswith("FSQ bottleneck")


def test_fsq_params_are_validated_by_the_registry(registry: omnipipe.Registry) -> None:
    with pytest.raises(omnipipe.RegistryError, match="levles"):
        registry.build("quantizer", {"type": "fsq", "levles": [8, 8]}, dim=4)
    with pytest.raises(omnipipe.RegistryError, match="at least 2"):
        registry.build("quantizer", {"type": "fsq", "levels": [8, 1]}, dim=4)


def test_fsq_tiny_spec_builds(registry: omnipipe.Registry) -> None:
    quantizer, width = quantizer_from_spec(SPEC, registry)
    assert quantizer.codebook_size == 256
    out = quantizer(torch.randn(2, 1, 8, 8, width))
    assert out.codes.shape == (2, 1, 8, 8)
