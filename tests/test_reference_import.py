"""Imported reference OmniTokenizer checkpoints reproduce the reference program's own outputs.

The fixtures in ``tests/fixtures/reference`` were written by running FoundationVision/OmniTokenizer
(commit 701b619, unmodified network code, CPU, fp32) on weights from ``synthetic_reference_state_dict``
(see its README): small-width Lightning checkpoints with their outputs, and for the paper width (and
a stage-1 variant) only the seeds, flags and outputs. Inputs are ``synthetic_pixels`` of stored seeds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from omnipipe.cli import main
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import load_spec
from omnipipe.spec.model import ModelSpec
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.reference.architecture import ReferenceArchitecture, ReferenceArchitectureError
from omnipipe.reference.checkpoint import ReferenceCheckpointError
from omnipipe.reference.convert import ReferenceKeysError, import_reference, tokenizer_from_reference
from omnipipe.reference.synthetic import (
    lightning_checkpoint,
    synthetic_pixels,
    synthetic_reference_state_dict,
    write_lightning_checkpoint,
)

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
RECON_TOLERANCE = {"rtol": 1e-5, "atol": 5e-5}  # pixels are O(1); fp32 differs in summation order only


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / f"{name}.npz") as data:
        return dict(data)


def seeded_tokenizer(name: str) -> Tokenizer:
    """The omnipipe tokenizer of a seed-only fixture: regenerate the weights from the seed, convert them."""
    args = json.loads((FIXTURES / f"{name}.json").read_text())["args"]
    arch = ReferenceArchitecture.model_validate(args)
    state = synthetic_reference_state_dict(arch, int(fixture(name)["weights_seed"]))
    return tokenizer_from_reference(state, arch, name)[0]


@torch.no_grad()
def run(model: Tokenizer, expected: dict[str, np.ndarray], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode the fixture's ``kind`` input; check codes (exactly) or latents; return (reconstruction, pixels)."""
    pixels = synthetic_pixels(int(expected[f"pixels_seed_{kind}"]), tuple(expected[f"pixels_shape_{kind}"]))
    q = model.quantize(model.encode(pixels))
    if q.codes is not None:
        assert torch.equal(q.codes, torch.from_numpy(expected[f"{kind}_codes"]).long())
    else:
        latents = torch.from_numpy(expected[f"{kind}_latents"]).permute(0, 2, 3, 4, 1)  # (B, T', H', W', C)
        torch.testing.assert_close(q.latents, latents, **RECON_TOLERANCE)
    return model.decode(q.z_q), pixels


@pytest.mark.parametrize("name", ["small-vq", "small-vae"])
@pytest.mark.parametrize("kind", ["image", "clip"])
def test_small_checkpoint_reproduces_reference_codes_and_reconstructions(name: str, kind: str) -> None:
    model, report = import_reference(FIXTURES / f"{name}.ckpt")
    expected = fixture(name)
    reconstruction, _ = run(model, expected, kind)
    torch.testing.assert_close(reconstruction, torch.from_numpy(expected[f"{kind}_recon"]), **RECON_TOLERANCE)
    assert report.ignored["image_discriminator"] > 0 and report.ignored["video_discriminator"] > 0


@pytest.mark.parametrize("name", ["small-stage1-vq", "small-einsum-stage1-vq", "small-einsum-vae"])
def test_other_flags_and_the_einsum_attention_path_reproduce_reference(name: str) -> None:
    """Stage 1 (temporal patches of 2 frames, spatial_pos 'rel', whose bias only the einsum path adds) and the
    reference's einsum attention branch (continuous position bias, ALiBi in time) on stage-1 and VAE flags."""
    model, expected = seeded_tokenizer(name), fixture(name)
    for kind in ("image", "clip"):
        reconstruction, _ = run(model, expected, kind)
        torch.testing.assert_close(reconstruction, torch.from_numpy(expected[f"{kind}_recon"]), **RECON_TOLERANCE)


@pytest.mark.parametrize("name", ["paper-vq", "paper-vae"])
def test_paper_width_reproduces_reference(name: str) -> None:
    """train.sh's stage-2 (VQ) and stage-3 (VAE) flags, 51 M parameters: a 256² image and a 17×128² clip."""
    model, expected = seeded_tokenizer(name), fixture(name)
    assert model.spec.encoder.width == 512 and sum(p.numel() for p in model.parameters()) > 45e6
    for kind in ("image", "clip"):
        reconstruction, _ = run(model, expected, kind)
        pooled = F.avg_pool3d(reconstruction, (1, 8, 8))
        torch.testing.assert_close(pooled, torch.from_numpy(expected[f"{kind}_recon_pool8"]), **RECON_TOLERANCE)
        crop = reconstruction[..., :32, :32]
        torch.testing.assert_close(crop, torch.from_numpy(expected[f"{kind}_recon_crop"]), **RECON_TOLERANCE)
        stats = torch.stack([reconstruction.mean(), reconstruction.std(), reconstruction.min(), reconstruction.max()])
        torch.testing.assert_close(stats.double(), torch.from_numpy(expected[f"{kind}_recon_stats"]), rtol=1e-5, atol=1e-5)


def test_imported_model_runs_on_non_square_inputs() -> None:
    """The reference assumes square grids (its encoder takes sqrt(H'·W')); the imported network does not.

    Its components are checked on non-square grids against brute force in test_nn_reference_components.
    """
    model, _ = import_reference(FIXTURES / "small-vq.ckpt")
    clip = synthetic_pixels(0, (1, 3, 9, 32, 48))
    with torch.no_grad():
        out = model(clip)
        image = model(clip[:, :, :1])
    assert out.reconstruction.shape == clip.shape and torch.isfinite(out.reconstruction).all()
    assert out.quantizer.codes.shape == (1, 3, 8, 12) and image.quantizer.codes.shape == (1, 1, 8, 12)
    assert image.reconstruction.shape == (1, 3, 1, 32, 48)


def test_cli_writes_a_tokenizer_that_loads_with_its_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, spec = tmp_path / "vq.safetensors", tmp_path / "vq.yaml"
    assert main(["import-reference", str(FIXTURES / "small-vq.ckpt"), "--out", str(out), "--spec-out", str(spec)]) == 0
    assert "VQ tokenizer" in capsys.readouterr().out
    model, expected = Tokenizer.from_checkpoint(out), fixture("small-vq")
    reconstruction, _ = run(model, expected, "clip")
    torch.testing.assert_close(reconstruction, torch.from_numpy(expected["clip_recon"]), **RECON_TOLERANCE)
    assert "embed_norms: true" in spec.read_text()


def small_checkpoint() -> dict:
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(FIXTURES / "small-vq.ckpt", weights_only=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["state_dict"].update({"encoder.extra.weight": torch.zeros(1)}), "unknown keys .*encoder.extra.weight"),
        (lambda c: c["state_dict"].pop("decoder.to_pixels.0.bias"), "missing keys: decoder.to_pixels.0.bias"),
        (lambda c: c["state_dict"].update({"post_vq_conv.1.bias": torch.zeros(3)}), r"post_vq_conv.1.bias \(3,\) ≠ \(32,\)"),
        (lambda c: c["state_dict"]["encoder.enc_spatial_transformer.norm_out.beta"].fill_(1.0), "is not zero"),
        (lambda c: setattr(c["hyper_parameters"]["args"], "use_external_codebook", True), "use_external_codebook=True"),
        (lambda c: c.pop("hyper_parameters"), "no hyper-parameters"),
    ],
)
def test_bad_checkpoints_fail_with_one_line(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    content = small_checkpoint()
    edit(content)
    path = tmp_path / "bad.ckpt"
    write_lightning_checkpoint(path, content)
    with pytest.raises((ReferenceKeysError, ReferenceCheckpointError, ReferenceArchitectureError), match=message) as error:
        import_reference(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


class Payload:
    """An object a weights_only load must refuse (it is not on the allow-list)."""


def test_checkpoints_pickling_other_objects_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "unsafe.ckpt"
    torch.save({**lightning_checkpoint({}, {}), "callbacks": {"x": Payload()}}, path)
    assert main(["import-reference", str(path), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "outside the allow-list" in err and "Payload" in err and not (tmp_path / "x.safetensors").exists()


def test_the_attention_path_matters() -> None:
    """Imported as if trained on the SDPA path, the einsum-path weights do not give the reference's outputs."""
    name = "small-einsum-stage1-vq"
    args = json.loads((FIXTURES / f"{name}.json").read_text())["args"]
    arch = ReferenceArchitecture.model_validate({**args, "attention_path": "sdpa"})
    expected = fixture(name)
    model, _ = tokenizer_from_reference(synthetic_reference_state_dict(arch, int(expected["weights_seed"])), arch, name)
    pixels = synthetic_pixels(int(expected["pixels_seed_clip"]), tuple(expected["pixels_shape_clip"]))
    with torch.no_grad():
        assert not torch.equal(model.tokenize(pixels), torch.from_numpy(expected["clip_codes"]).long())


def resolved_model_dump(spec: ModelSpec) -> dict:
    """The model spec with every component's params validated (so defaults are spelled out)."""
    registry = get_registry()
    for entry in (spec.patchifier, spec.quantizer, *spec.encoder.spatial, *spec.encoder.temporal, *spec.decoder.spatial,
                  *spec.decoder.temporal):
        entry.resolve(registry)
    return spec.model_dump(mode="json")


@pytest.mark.parametrize(
    ("recipe", "overrides"),
    [
        ("omnitokenizer-reference-imagenet-k600", {}),
        ("omnitokenizer-reference-imagenet", {"temporal_patch_size": 2, "spatial_pos": "rel", "attention_path": "einsum"}),
    ],
)
def test_recipes_use_exactly_the_imported_network(recipe: str, overrides: dict) -> None:
    """The pipelines' model is what import-reference builds for train.sh's flags (stage 2; stage 1 for ImageNet)."""
    args = {**json.loads((FIXTURES / "paper-vq.json").read_text())["args"], **overrides}
    imported = ReferenceArchitecture.model_validate(args).model_spec()
    experiment = load_spec(Path(__file__).parents[1] / "pipelines" / f"{recipe}.yaml")
    assert resolved_model_dump(experiment.model) == resolved_model_dump(imported)
    vae_args = json.loads((FIXTURES / "paper-vae.json").read_text())["args"]  # stage 3: --use_vae --kl_weight 1e-6
    vae = resolved_model_dump(ReferenceArchitecture.model_validate({**vae_args, **overrides}).model_spec())
    for stage in experiment.train.stages.values():
        if stage.quantizer is not None:  # the KL fine-tuning stage: the VAE checkpoints' bottleneck
            stage.quantizer.resolve(get_registry())
            assert stage.quantizer.model_dump(mode="json") == vae["quantizer"]


def test_imported_network_trains_under_bf16_autocast() -> None:
    """Every reference option runs forward and backward in bf16 (biases and masks follow the query dtype)."""
    args = json.loads((FIXTURES / "small-einsum-stage1-vq.json").read_text())["args"]
    arch = ReferenceArchitecture.model_validate(args)
    model = tokenizer_from_reference(synthetic_reference_state_dict(arch, 0), arch, "bf16")[0].train()
    pixels = synthetic_pixels(1, (2, 3, 5, 16, 24))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(pixels)
        loss = (out.reconstruction.float() - pixels).abs().mean() + out.quantizer.losses["commitment"]
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("stage_name", "fixture"), [("joint", "paper-vq.json"), ("kl_finetune", "paper-vae.json")])
def test_the_k600_recipes_critics_and_perceptual_loss_follow_the_reference_flags(stage_name: str, fixture: str) -> None:
    """Stages 2 and 3 against the flags the reference program itself parsed (its hyper-parameters in the fixture)."""
    from omnipipe.train.critics import Critics

    args = json.loads((FIXTURES / fixture).read_text())["args"]
    experiment = load_spec(Path(__file__).parents[1] / "pipelines" / "omnitokenizer-reference-imagenet-k600.yaml")
    train, stage = experiment.train, experiment.train.stages[stage_name]
    critics = Critics.of_stage(train, stage, get_registry(), torch.device("cpu"))
    adversarial = train.losses["adversarial"]
    assert adversarial.weight == 1.0 and not adversarial.params.adaptive_weight
    assert critics.weights == {"image": args["image_gan_weight"], "video": args["video_gan_weight"]}
    frames = "all_frames" if args["apply_allframes"] else "one_frame"
    assert critics.on_clips == frames and train.losses["perceptual"].params.on_clips == frames
    assert train.losses["perceptual"].weight == args["perceptual_weight"]
    # feature matching: the reference's gan_feat_weight · Σ over disc_layers + 1 block L1s; ours weight · fm · their mean
    blocks = args["disc_layers"] + 1
    fm = args["video_gan_weight"] * adversarial.params.feature_matching_weight / blocks
    assert fm == pytest.approx(args["gan_feat_weight"])
    settings = stage.discriminator_optimizer
    assert critics.optimizer.param_groups[0]["initial_lr"] == pytest.approx(args["lr"] * args["dis_lr_multiplier"])
    assert args["dis_minlr_multiplier"]  # the floor scales with the lr: a shared min_lr_ratio says the same
    assert (settings.warmup_steps, settings.grad_clip, settings.skip_below) == (
        args["dis_warmup_steps"], args["grad_clip_val_disc"], args["disloss_check_thres"]
    )
