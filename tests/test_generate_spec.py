"""Bad generation specs: one clear line each, at validate time where the spec alone shows it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from omnipipe.errors import SpecError
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec

TINY = Path(__file__).resolve().parents[1] / "pipelines" / "tiny.yaml"


def _spec(change) -> str:  # noqa: ANN001
    data = yaml.safe_load(TINY.read_text())
    change(data["generate"])
    return yaml.safe_dump(data, sort_keys=False)


def _error(change) -> str:  # noqa: ANN001
    with pytest.raises(SpecError) as caught:
        parse_spec(_spec(change), "tiny.yaml", get_registry())
    return str(caught.value)


def test_the_tiny_spec_validates_and_resolves_sampling_settings() -> None:
    spec = parse_spec(TINY.read_text(), "tiny.yaml", get_registry())
    ar = spec.generate.generators["ar"]
    assert ar.sample.sampling.cfg_scale == 3.0 and ar.sample.sampling.kv_cache is True
    assert spec.generate.generators["masked"].sample.sampling.steps == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g["tokens"]["digits"].update(tokenizer="jiont"),
         r"generate\.tokens\.digits\.tokenizer: 'jiont' is not a training stage or vtok entry \(image_pretrain, joint, kl_finetune, vtok\)$"),
        (lambda g: g["generators"]["ar"].update(tokens="digit"),
         r"generate\.generators\.ar\.tokens: 'digit' is not a generate\.tokens entry \(entries: digits, moving_digits, digit_latents, moving_digits_vtok\)$"),
        (lambda g: g["generators"]["ar"].update(vocab_size=512),
         r"generate\.generators\.ar\.vocab_size: 512 does not match the codebook size 256 of tokenizer stage 'joint'$"),
        (lambda g: g["generators"]["ar"].update(grid=[1, 16, 16]),
         r"generate\.generators\.ar\.grid: \[1, 16, 16\] does not match the token grid \[1, 8, 8\] of 'digits'$"),
        (lambda g: g["generators"]["ar"].update(class_conditional=False),
         r"generate\.generators\.ar\.sample\.settings\.cfg_scale: classifier-free guidance needs a class-conditional model"),
        (lambda g: g["generators"]["masked"]["sample"]["settings"].update(step=4),
         r"generate\.generators\.masked\.sample\.settings\.step: extra field not permitted — did you mean steps\?$"),
        (lambda g: g["tokens"]["digits"].update(tokenizer="kl_finetune"),
         r"generate\.generators\.(ar|masked)\.model\.type: generator '(ar|masked)' models codes, but tokenizer stage 'kl_finetune' gives latents"),
        (lambda g: g["generators"]["ar_video"]["sample"].update(prefix_frames=[0, 2]),
         r"generate\.generators\.ar_video\.sample\.prefix_frames\[1\]: 2 latent frames given: must be 0 \.\. 1"),
        (lambda g: g["evaluate"]["metrics"].append({"type": "psnr"}),
         r"generate\.evaluate\.metrics\[2\]\.type: metric 'psnr' judges reconstructions, not samples"),
        (lambda g: g["generators"]["ar_video"]["evaluate"]["metrics"].insert(0, {"type": "ssim"}),
         r"generate\.generators\.ar_video\.evaluate\.metrics\[0\]\.type: metric 'ssim' judges reconstructions"),
        (lambda g: g["generators"]["ar"]["model"].update(widht=64),
         r"generate\.generators\.ar\.model\.widht: extra field not permitted — did you mean width\?"),
    ],
)
def test_bad_generation_input_is_one_line_naming_the_yaml_path(change, message: str) -> None:  # noqa: ANN001
    error = _error(change)
    lines = error.splitlines()
    assert any(re.search(message, line) for line in lines), error
    assert all(line.startswith("tiny.yaml:") for line in lines)
