"""Malformed specs: each gives a located, one-line-per-problem error with a pointed message."""
from __future__ import annotations

from pathlib import Path

import pytest

from omnipipe.errors import SpecError
from omnipipe.registry import Registry
from omnipipe.spec.loader import load_spec, parse_spec


def _errors(text: str, registry: Registry) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source="unit.yaml", registry=registry)
    return str(caught.value).splitlines()


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# (id, old text, new text, one expected error line (or a distinctive part of it))
CASES = [
    ("plugin-param-typo", "    codebook_size: 512", "    codebook_sise: 512",
     "unit.yaml:16: model.quantizer.codebook_sise: extra field not permitted — did you mean codebook_size?"),
    ("plugin-param-then-missing", "    codebook_size: 512", "    codebook_sise: 512",
     "unit.yaml:14: model.quantizer.codebook_size: required but missing"),
    ("unknown-component", "    type: vq", "    type: vqq",
     "unit.yaml:15: model.quantizer.type: unknown quantizer 'vqq' — did you mean vq? (registered: kl, vq)"),
    ("unknown-attention-in-list", "temporal: [{type: causal}]\n  quantizer", "temporal: [{type: casual}]\n  quantizer",
     "unit.yaml:13: model.encoder.temporal[0].type: unknown attention 'casual' — did you mean causal?"),
    ("wrong-type", "codebook_size: 512", "codebook_size: many",
     "unit.yaml:16: model.quantizer.codebook_size: Input should be a valid integer, unable to parse string as an integer (got 'many')"),
    ("plugin-param-out-of-range", "codebook_size: 512", "codebook_size: 1",
     "unit.yaml:16: model.quantizer.codebook_size: Input should be greater than 1 (got 1)"),
    ("key-named-size", "  resolutions: [[32, 32]]", "  size: 32",
     "unit.yaml:6: data.size: key name 'size' is not allowed"),
    ("key-named-nfiles-deep", "{type: omni, patch_size: 8}", "{type: omni, nfiles: 8}",
     "unit.yaml:8: model.patchifier.nfiles: key name 'nfiles' is not allowed"),
    ("unknown-top-level-key", "seed: 3", "sead: 3",
     "unit.yaml:2: sead: extra field not permitted — did you mean seed?"),
    ("misspelled-section-key", "    width: 64\n    num_heads: 4\n    spatial: [{type: full}, {type: window",
     "    widht: 64\n    num_heads: 4\n    spatial: [{type: full}, {type: window",
     "unit.yaml:10: model.encoder.widht: extra field not permitted — did you mean width?"),
    ("component-without-type", "{type: full}, {type: window, window_size: 4}", "{type: full}, {window_size: 4}",
     "unit.yaml:12: model.encoder.spatial[1].type: required but missing"),
    ("init-from-later-stage", "init_from: image_pretrain", "init_from: joint",
     "unit.yaml:27: train.stages.joint.init_from: 'joint' is not an earlier stage (earlier: image_pretrain)"),
    ("non-positive-steps", "image_pretrain: {data: images, steps: 10", "image_pretrain: {data: images, steps: 0",
     "unit.yaml:26: train.stages.image_pretrain.steps: Input should be greater than 0 (got 0)"),
    ("bad-literal", "{data: images,", "{data: movies,",
     "unit.yaml:26: train.stages.image_pretrain.data: Input should be 'images', 'joint' or 'videos' (got 'movies')"),
    ("resolution-not-a-pair", "[[32, 32]]", "[[32]]",
     "unit.yaml:6: data.resolutions[0][1]: required but missing"),
    ("bad-name", "name: unit", "name: 'a name with spaces'",
     "unit.yaml:1: name: String should match pattern"),
    ("loss-entry-key-typo", "{type: l1, weight: 1.0}", "{type: l1, wieght: 1.0}",
     "unit.yaml:24: train.losses.recon.wieght: extra field not permitted — did you mean weight?"),
    ("empty-sources", "  sources:\n    - {type: image_folder, root: data/raw/images}", "  sources: []",
     "unit.yaml:4: data.sources: List should have at least 1 item after validation, not 0"),
    ("missing-component-param", "{type: image_folder, root: data/raw/images}", "{type: image_folder}",
     "unit.yaml:5: data.sources[0].root: required but missing"),
]


@pytest.mark.parametrize("old,new,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_message(old: str, new: str, expected: str, valid_spec_text: str, spec_registry: Registry) -> None:
    lines = _errors(_edit(valid_spec_text, old, new), spec_registry)
    assert any(line.startswith(expected) for line in lines), lines


def test_missing_section(valid_spec_text: str, spec_registry: Registry) -> None:
    text = valid_spec_text[: valid_spec_text.index("train:")]
    assert _errors(text, spec_registry) == ["unit.yaml: train: required but missing"]


def test_evaluated_stages_and_resolutions_must_exist(valid_spec_text: str, spec_registry: Registry) -> None:
    lines = _errors(valid_spec_text + "evaluate: {stages: [joint, kl_finetune]}\n", spec_registry)
    assert lines == ["unit.yaml:28: evaluate.stages[1]: 'kl_finetune' is not a training stage (image_pretrain, joint)"]
    lines = _errors(valid_spec_text + "evaluate: {resolutions: [[32, 32], [64, 64]]}\n", spec_registry)
    assert len(lines) == 1 and lines[0].startswith("unit.yaml:28: evaluate.resolutions[1]: [64, 64] is not among data.resolutions")


def test_invalid_yaml_points_at_line_and_column(valid_spec_text: str, spec_registry: Registry) -> None:
    lines = _errors(_edit(valid_spec_text, "seed: 3", "seed: [3"), spec_registry)
    assert len(lines) == 1 and lines[0].startswith("unit.yaml:3:") and "invalid YAML" in lines[0]


@pytest.mark.parametrize("text,found", [("", "an empty file"), ("- a\n- b\n", "a list"), ("just text\n", "a str")])
def test_spec_must_be_a_mapping(text: str, found: str, spec_registry: Registry) -> None:
    assert _errors(text, spec_registry) == [f"unit.yaml: a spec must be a YAML mapping of sections, found {found}"]


def test_missing_file_names_the_path(tmp_path: Path, spec_registry: Registry) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: spec file not found$"):
        load_spec(tmp_path / "nope.yaml", spec_registry)


def test_yaml_tags_are_not_executed(valid_spec_text: str, spec_registry: Registry) -> None:
    text = valid_spec_text.replace("name: unit", "name: !!python/object/apply:os.system ['echo pwned']")
    lines = _errors(text, spec_registry)
    assert len(lines) == 1 and "invalid YAML" in lines[0] and "python/object/apply" in lines[0]


def test_every_problem_is_reported_once_per_line(valid_spec_text: str, spec_registry: Registry) -> None:
    text = _edit(_edit(valid_spec_text, "seed: 3", "sead: 3"), "steps: 10, batch_size: 4, init", "steps: -5, batch_size: 4, init")
    lines = _errors(text, spec_registry)
    assert [line.split(": ")[1] for line in lines] == ["sead", "train.stages.joint.steps"]


def test_valid_spec_loads_with_validated_params(tmp_path: Path, valid_spec_text: str, spec_registry: Registry) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(valid_spec_text)
    spec = load_spec(path, spec_registry)
    assert spec.model.quantizer.params.codebook_size == 512
    assert spec.model.quantizer.params.code_dim == 8  # default filled in from the plugin's Params
    assert spec.model.encoder.spatial[1].params.window_size == 4
    assert spec.train.losses["recon"].weight == 1.0
    dumped = spec.model_dump(mode="json")
    assert dumped["model"]["quantizer"] == {"type": "vq", "codebook_size": 512, "code_dim": 8}
    assert dumped["train"]["losses"]["recon"] == {"type": "l1", "weight": 1.0, "start_step": 0}


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("  resolutions: [[32, 32]]", "  resolutions: [[32, 32]]\n  clip_frames: 6",
         "unit.yaml:7: data.clip_frames: 6 frames do not fit model.patchifier.temporal_patch_size 4: use 1 + k·4 (e.g. 5)"),
        ("  resolutions: [[32, 32]]", "  resolutions: [[32, 30]]",
         "unit.yaml:6: data.resolutions[0]: 32×30 is not a multiple of model.patchifier.patch_size 8"),
        ("{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, resolutions: [[64, 64]]}",
         "unit.yaml:26: train.stages.image_pretrain.resolutions[0]: [64, 64] is not among data.resolutions [[32, 32]], so no data is prepared for it"),
    ],
    ids=["clip-frames-vs-tube", "resolution-vs-patch", "stage-resolution-not-prepared"],
)
def test_sections_must_agree(old: str, new: str, expected: str, valid_spec_text: str, spec_registry: Registry) -> None:
    assert _errors(_edit(valid_spec_text, old, new), spec_registry) == [expected]


# Specs that validated but failed, hung or misbehaved later: each is one located line at validate time.
LATE_FAILURES = [
    ("steps-true", "steps: 10, batch_size: 4}\n    joint", "steps: true, batch_size: 4}\n    joint",
     "unit.yaml:26: train.stages.image_pretrain.steps: Input should be a valid integer (got True)"),
    ("steps-float", "steps: 10, batch_size: 4}\n    joint", "steps: 1.0e+12, batch_size: 4}\n    joint",
     "unit.yaml:26: train.stages.image_pretrain.steps: Input should be a valid integer (got 1000000000000.0)"),
    ("steps-string", "steps: 10, batch_size: 4}\n    joint", "steps: 1e12, batch_size: 4}\n    joint",
     "unit.yaml:26: train.stages.image_pretrain.steps: Input should be a valid integer (got '1e12')"),
    ("negative-seed", "seed: 3", "seed: -1", "unit.yaml:2: seed: Input should be greater than or equal to 0 (got -1)"),
    ("huge-seed", "seed: 3", f"seed: {2**70}", f"unit.yaml:2: seed: Input should be less than 4294967296 (got {2**70})"),
    ("seed-true", "seed: 3", "seed: true", "unit.yaml:2: seed: Input should be a valid integer (got True)"),
    ("beta-one", "{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, optimizer: {betas: [0.9, 1.0]}}",
     "unit.yaml:26: train.stages.image_pretrain.optimizer.betas[1]: Input should be less than 1 (got 1.0)"),
    ("beta-negative", "{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, optimizer: {betas: [-0.1, 0.9]}}",
     "unit.yaml:26: train.stages.image_pretrain.optimizer.betas[0]: Input should be greater than or equal to 0 (got -0.1)"),
    ("lr-inf", "{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, optimizer: {lr: .inf}}",
     "unit.yaml:26: train.stages.image_pretrain.optimizer.lr: Input should be a finite number (got inf)"),
    ("lr-nan", "{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, optimizer: {lr: .nan}}",
     "unit.yaml:26: train.stages.image_pretrain.optimizer.lr: Input should be a finite number (got nan)"),
    ("lr-negative", "{data: images, steps: 10, batch_size: 4}", "{data: images, steps: 10, batch_size: 4, optimizer: {lr: -0.001}}",
     "unit.yaml:26: train.stages.image_pretrain.optimizer.lr: Input should be greater than 0 (got -0.001)"),
    ("loss-weight-negative", "{type: l1, weight: 1.0}", "{type: l1, weight: -1}",
     "unit.yaml:24: train.losses.recon.weight: Input should be greater than or equal to 0 (got -1)"),
    ("loss-weight-inf", "{type: l1, weight: 1.0}", "{type: l1, weight: .inf}",
     "unit.yaml:24: train.losses.recon.weight: Input should be a finite number (got inf)"),
    ("quantizer-weight-negative", "  losses:\n", "  quantizer_loss_weights: {commitment: -0.25}\n  losses:\n",
     "unit.yaml:23: train.quantizer_loss_weights.commitment: Input should be greater than or equal to 0 (got -0.25)"),
    ("window-larger-than-grid", "{type: window, window_size: 4}", "{type: window, window_size: 64}",
     "unit.yaml:12: model.encoder.spatial[1].window_size: 64 is larger than the 4×4 token grid of resolution 32×32 "
     "(patch_size 8); windows are padded to full size, so use at most 4 or a full attention"),
    ("duplicate-key", "    image_pretrain: {data: images, steps: 10, batch_size: 4}\n",
     "    image_pretrain: {data: images, steps: 3, batch_size: 4, steps: 300000}\n",
     "unit.yaml:26: duplicate key 'steps' (first at line 26): YAML would silently keep the last value"),
    ("duplicate-section", "name: unit\n", "name: unit\nname: other\n",
     "unit.yaml:2: duplicate key 'name' (first at line 1): YAML would silently keep the last value"),
]


@pytest.mark.parametrize("old,new,expected", [c[1:] for c in LATE_FAILURES], ids=[c[0] for c in LATE_FAILURES])
def test_spec_that_would_fail_later_is_rejected_now(old: str, new: str, expected: str, valid_spec_text: str, spec_registry: Registry) -> None:
    assert _errors(_edit(valid_spec_text, old, new), spec_registry) == [expected]


def test_merge_keys_are_not_duplicates(valid_spec_text: str, spec_registry: Registry) -> None:
    text = _edit(valid_spec_text, "    joint: {data: joint, steps: 10, batch_size: 4, init_from: image_pretrain}",
                 "    joint: {<<: *stage, data: joint, init_from: image_pretrain}")  # fmt: skip
    text = _edit(text, "image_pretrain: {data: images,", "image_pretrain: &stage {data: images,")
    spec = parse_spec(text, source="unit.yaml", registry=spec_registry)
    assert spec.train.stages["joint"].steps == 10 and spec.train.stages["joint"].data == "joint"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
         for p, c in zip("abcdefgh", "bcdefghi")),  # the "billion laughs": 10^9 values from 9 lines
         "unit.yaml:5: more than 100,000 values once aliases are expanded, the limit for YAML files (an alias bomb?)"),
        ("x: " + "[" * 50_000 + "]" * 50_000 + "\n", "unit.yaml:1: nested deeper than 64 levels, the limit for YAML files"),
    ],
    ids=["alias-bomb", "deep-nesting"],
)
def test_hostile_yaml_is_refused_before_it_is_built(text: str, expected: str, spec_registry: Registry) -> None:
    assert _errors(text, spec_registry) == [expected]


def test_a_huge_spec_file_is_refused_before_it_is_read(tmp_path: Path, spec_registry: Registry) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as file:
        file.truncate(50 * 2**20)  # 50 MB (sparse): never read
    with pytest.raises(SpecError) as caught:
        load_spec(path, spec_registry)
    assert str(caught.value) == f"{path}: 52,428,800 bytes, more than the 1,048,576-byte limit for YAML files"
    assert _errors("name: " + "x" * 2**20, spec_registry) == ["unit.yaml: 1,048,582 bytes, more than the 1,048,576-byte limit for YAML files"]
