"""``ldm`` entries in specs: the paper-scale specs validate, bad input is one located line each."""
from __future__ import annotations

from pathlib import Path

import pytest

from omnipipe.errors import SpecError
from omnipipe.spec.loader import load_spec, parse_spec

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
DIT = (PIPELINES / "dit-xl2-imagenet256.yaml").read_text()


def test_paper_scale_specs_validate_with_the_paper_sizes() -> None:
    dit = load_spec(PIPELINES / "dit-xl2-imagenet256.yaml").generate.generators["dit_xl2"].model.params
    assert (dit.depth, dit.width, dit.num_heads, dit.patch_size, dit.blocks) == (28, 1152, 16, 2, "full")
    latte = load_spec(PIPELINES / "latte-xl2-ucf101.yaml").generate.generators["latte_xl2"]
    assert (latte.model.params.depth, latte.model.params.width, latte.model.params.blocks) == (28, 1152, "spatial_temporal")
    assert tuple(latte.grid) == (5, 32, 32) and latte.latent_channels == 8
    assert type(dit).model_validate(dit.model_dump(mode="json")) == dit  # a saved generator's entry rebuilds


def _error(old: str, new: str) -> str:
    assert DIT.count(old) == 1, old
    with pytest.raises(SpecError) as caught:
        parse_spec(DIT.replace(old, new), source="dit.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tokenizer: kl_finetune", "tokenizer: image_pretrain",
         "generate.generators.dit_xl2.model.type: generator 'ldm' models latents, but tokenizer stage 'image_pretrain' gives codes"),
        ("      latent_channels: 8", "      latent_channels: 4",
         "generate.generators.dit_xl2.latent_channels: 4 does not match the 8 latent channels of tokenizer stage 'kl_finetune'"),
        ("grid: [1, 32, 32]", "grid: [1, 16, 16]",
         "generate.generators.dit_xl2.grid: [1, 16, 16] does not match the token grid [1, 32, 32] of 'imagenet'"),
        ("sampler: ddim,", "sampler: dpm_solver,",
         "generate.generators.dit_xl2.sample.settings.sampler: Input should be 'euler', 'heun' or 'ddim' (got 'dpm_solver')"),
        ("steps: 250,", "steps: 0,", "generate.generators.dit_xl2.sample.settings.steps: Input should be greater than 0 (got 0)"),
        ("variant: XL,", "variant: XL, depth: 12,", "generate.generators.dit_xl2.model.depth: variant XL sets depth, width and num_heads; drop depth"),
        ("patch_size: 2,", "patch_size: 4,", "generate.generators.dit_xl2.model.patch_size: Input should be 1 or 2 (got 4)"),
    ],
)  # fmt: skip
def test_bad_ldm_entries_are_one_located_line(old: str, new: str, expected: str) -> None:
    line = _error(old, new)
    assert line.startswith("dit.yaml:") and line.split(": ", 1)[1] == expected

