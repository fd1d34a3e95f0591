"""Shared fixtures: third-party plugin packages installed for real, and a registry for spec tests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.registry import Registry

PLUGIN_PACKAGES = Path(__file__).parent / "plugin_packages"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory into which pip installs the test plugin distributions (with entry points)."""
    target = tmp_path_factory.mktemp("plugin_site")
    packages = sorted(str(p) for p in PLUGIN_PACKAGES.iterdir() if (p / "pyproject.toml").exists())
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), *packages],
        check=True,
    )
    return target


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatchEmbed:
    """Cuts frames into patches (spec-test component)."""

    class Params(_Strict):
        patch_size: int = Field(default=8, gt=0)
        temporal_patch_size: int = 4

    def __init__(self, params: Params) -> None:
        self.params = params


class Attention:
    """An attention block (spec-test component)."""

    class Params(_Strict):
        window_size: int | None = None

    def __init__(self, params: Params) -> None:
        self.params = params


class CodebookQuantizer:
    """A codebook bottleneck (spec-test component)."""

    class Params(_Strict):
        codebook_size: int = Field(gt=1)
        code_dim: int = 8

    def __init__(self, params: Params, dim: int) -> None:
        self.params = params
        self.dim = dim


class GaussianBottleneck:
    """A continuous bottleneck (spec-test component)."""

    class Params(_Strict):
        latent_channels: int = 8

    def __init__(self, params: Params, dim: int) -> None:
        self.params = params


class FolderSource:
    """A folder of media (spec-test component)."""

    class Params(_Strict):
        root: str

    def __init__(self, params: Params) -> None:
        self.params = params


class AbsError:
    """A loss (spec-test component)."""

    Params = _Strict

    def __init__(self, params: _Strict) -> None:
        self.params = params


@pytest.fixture
def spec_registry() -> Registry:
    """A registry with one small component per kind that the spec tests name."""
    registry = Registry()
    with registry.providing("spec-tests"):
        registry.add("patchifier", "omni", PatchEmbed)
        registry.add("attention", "full", Attention)
        registry.add("attention", "window", Attention)
        registry.add("attention", "causal", Attention)
        registry.add("quantizer", "vq", CodebookQuantizer)
        registry.add("quantizer", "kl", GaussianBottleneck)
        registry.add("dataset", "image_folder", FolderSource)
        registry.add("loss", "l1", AbsError)
    return registry


VALID_SPEC = """\
name: unit
seed: 3
data:
  sources:
    - {type: image_folder, root: data/raw/images}
  resolutions: [[32, 32]]
model:
  patchifier: {type: omni, patch_size: 8}
  encoder:
    width: 64
    num_heads: 4
    spatial: [{type: full}, {type: window, window_size: 4}]
    temporal: [{type: causal}]
  quantizer:
    type: vq
    codebook_size: 512
  decoder:
    width: 64
    num_heads: 4
    spatial: [{type: full}]
    temporal: [{type: causal}]
train:
  losses:
    recon: {type: l1, weight: 1.0}
  stages:
    image_pretrain: {data: images, steps: 10, batch_size: 4}
    joint: {data: joint, steps: 10, batch_size: 4, init_from: image_pretrain}
"""


@pytest.fixture
def valid_spec_text() -> str:
    return VALID_SPEC
