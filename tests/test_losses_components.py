"""The losses and discriminators register, and a spec names them with validated params."""
from __future__ import annotations

import pytest
import yaml

from omnipipe.errors import SpecError
from omnipipe.losses.components import register
from omnipipe.registry import Registry
from omnipipe.spec.loader import parse_spec

EXTRA = """
  losses:
    recon: {type: l1}
    perceptual: {type: lpips, net: vgg, allow_random_backbone: false, weight: 0.1}
    adversarial: {type: gan, objective: hinge, adaptive_weight: true, max_adaptive_weight: 1.0e+4,
                  feature_matching_weight: 0.0, weight: 0.1, start_step: 2000}
  discriminators:
    image: {type: patchgan2d, channels: 64, layers: 3, norm: group}
    video: {type: patchgan3d, channels: 32, layers: 3, norm: group}
"""


def _spec_text(valid_spec_text: str) -> str:
    document = yaml.safe_load(valid_spec_text)
    document["train"].update(yaml.safe_load("train:" + EXTRA)["train"])
    return yaml.safe_dump(document, sort_keys=False)


def test_spec_with_losses_and_discriminators(spec_registry: Registry, valid_spec_text: str) -> None:
    register(spec_registry)
    spec = parse_spec(_spec_text(valid_spec_text), registry=spec_registry)
    losses, critics = spec.train.losses, spec.train.discriminators
    assert losses["adversarial"].params.objective == "hinge" and losses["adversarial"].start_step == 2000
    assert losses["perceptual"].params.net == "vgg" and losses["perceptual"].weight == 0.1
    assert critics["video"].params.channels == 32 and set(critics) == {"image", "video"}
    disc = spec_registry.build("discriminator", critics["image"])
    assert type(disc).__name__ == "PatchGAN2d"


def test_misspelled_param_is_pointed(spec_registry: Registry, valid_spec_text: str) -> None:
    register(spec_registry)
    text = _spec_text(valid_spec_text).replace("feature_matching_weight", "feature_matchin_weight")
    with pytest.raises(SpecError, match="adversarial.feature_matchin_weight.*feature_matching_weight"):
        parse_spec(text, registry=spec_registry)
