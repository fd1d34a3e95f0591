"""The assembled tokenizer: causality, any resolution and frame count, bf16, checkpoints, errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save

from omnipipe.errors import OmnipipeError
from omnipipe.nn.components import register
from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.tokenizer import SPEC_KEY, Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.loader import resolve_components
from omnipipe.spec.model import ModelSpec


@pytest.fixture(scope="module")
def registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


def tiny_spec(quantizer: dict[str, Any] | None = None, **patchifier: int) -> ModelSpec:
    stack = {"width": 32, "num_heads": 2, "mlp": "geglu", "mlp_ratio": 2.0}
    return ModelSpec.model_validate(
        {
            "patchifier": {"type": "omni", "patch_size": 8, "temporal_patch_size": 4, **patchifier},
            "encoder": {**stack, "spatial": [{"type": "full"}, {"type": "window", "window_size": 4}],
                        "temporal": [{"type": "causal"}]},
            "quantizer": quantizer or {"type": "vq", "codebook_size": 64, "code_dim": 4},
            "decoder": {**stack, "width": 48, "num_heads": 3, "norm": "rmsnorm", "mlp": "swiglu",
                        "spatial": [{"type": "window", "window_size": 4}, {"type": "full"}],
                        "temporal": [{"type": "causal"}]},
        }
    )


def build(registry: Registry, **kwargs: Any) -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer.from_spec(tiny_spec(**kwargs), registry).eval()


def pixels(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, dtype=dtype) * 2 - 1


def test_an_image_encodes_as_the_first_frame_of_a_video(registry: Registry) -> None:
    model = build(registry).double()
    video = pixels(2, 3, 9, 32, 48, dtype=torch.float64)
    image = video[:, :, :1]
    torch.testing.assert_close(model.encode(image), model.encode(video)[:, :1], rtol=1e-10, atol=1e-10)
    out_image, out_video = model(image), model(video)
    assert torch.equal(out_image.quantizer.codes, out_video.quantizer.codes[:, :1])
    torch.testing.assert_close(out_image.reconstruction, out_video.reconstruction[:, :, :1], rtol=1e-10, atol=1e-10)


def test_later_frames_do_not_change_earlier_latents(registry: Registry) -> None:
    model = build(registry).double()
    video = pixels(1, 3, 9, 32, 32, dtype=torch.float64)
    changed = video.clone()
    changed[:, :, 5:] = pixels(1, 3, 4, 32, 32, dtype=torch.float64)  # latent frame 2 only
    before, after = model.encode(video), model.encode(changed)
    torch.testing.assert_close(before[:, :2], after[:, :2], rtol=0, atol=0)
    assert not torch.allclose(before[:, 2], after[:, 2])
    rec_before, rec_after = model(video).reconstruction, model(changed).reconstruction
    torch.testing.assert_close(rec_before[:, :, :5], rec_after[:, :, :5], rtol=0, atol=0)


@pytest.mark.parametrize(("t", "h", "w"), [(1, 64, 64), (1, 64, 96), (1, 128, 128), (5, 32, 32), (9, 32, 48), (17, 16, 16)])
def test_same_weights_run_at_any_resolution_and_frame_count(registry: Registry, t: int, h: int, w: int) -> None:
    model = build(registry)
    with torch.inference_mode():
        out = model(pixels(1, 3, t, h, w))
    assert out.reconstruction.shape == (1, 3, t, h, w)
    assert out.quantizer.codes.shape == (1, 1 + (t - 1) // 4, h // 8, w // 8)
    assert torch.isfinite(out.reconstruction).all()


def test_tokenize_detokenize_equals_forward(registry: Registry) -> None:
    model = build(registry)
    x = pixels(2, 3, 5, 32, 40)
    codes = model.tokenize(x)
    assert codes.dtype == torch.int64 and codes.shape == (2, 2, 4, 5)
    torch.testing.assert_close(model.detokenize(codes), model(x).reconstruction.clamp(-1, 1))


def test_detokenize_output_is_clamped_to_the_pixel_range(registry: Registry) -> None:
    model = build(registry)
    with torch.no_grad():
        for parameter in model.patchifier.parameters():
            parameter.mul_(1000)  # a decoder that overshoots, as an undertrained one does
    x = pixels(1, 3, 5, 16, 16)
    raw = model(x).reconstruction
    assert raw.abs().max() > 1
    decoded = model.detokenize(model.tokenize(x))
    assert decoded.min() == -1 and decoded.max() == 1
    torch.testing.assert_close(decoded, raw.clamp(-1, 1), rtol=0, atol=1e-3)


def test_kl_tokenizer_gives_continuous_latents(registry: Registry) -> None:
    model = build(registry, quantizer={"type": "kl", "latent_channels": 4})
    x = pixels(1, 3, 5, 16, 24)
    latents = model.tokenize(x)
    assert latents.shape == (1, 2, 2, 3, 4) and latents.is_floating_point()
    out = model(x)
    assert out.quantizer.codes is None and set(out.quantizer.losses) == {"kl"}
    torch.testing.assert_close(model.detokenize(latents), out.reconstruction.clamp(-1, 1))


def test_gradients_reach_the_encoder_through_the_quantizer(registry: Registry) -> None:
    model = build(registry).train()
    x = pixels(2, 3, 5, 16, 16)
    out = model(x)
    (out.reconstruction - x).abs().mean().backward()
    for name, parameter in model.encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert model.patchifier.embed_rest.weight.grad.abs().sum() > 0


def test_bf16_autocast_runs_end_to_end(registry: Registry) -> None:
    model = build(registry).train()
    x = pixels(2, 3, 5, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = (out.reconstruction.float() - x).abs().mean() + sum(out.quantizer.losses.values())
    loss.backward()
    assert out.reconstruction.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert out.quantizer.codes.dtype == torch.int64
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [((1, 3, 4, 32, 32), "T=4 frames, but T must be 1 or 1 + k·4"), ((1, 3, 1, 36, 32), "H=36 and W=32 must both be multiples of 8")],
)
def test_bad_pixel_shapes_are_reported(registry: Registry, shape: tuple[int, ...], fragment: str) -> None:
    with pytest.raises(InputShapeError, match=fragment.replace("+", r"\+")):
        build(registry).encode(torch.zeros(shape))


def test_head_dim_is_validated_in_the_spec() -> None:
    spec = tiny_spec().model_dump(mode="json")
    spec["encoder"]["num_heads"] = 3
    with pytest.raises(ValidationError, match="not divisible by num_heads 3"):
        ModelSpec.model_validate(spec)
    spec["encoder"]["num_heads"] = 16
    with pytest.raises(ValidationError, match="multiple of 4"):
        ModelSpec.model_validate(spec)


def test_checkpoint_round_trip(registry: Registry, tmp_path: Path) -> None:
    model = build(registry)
    model.quantizer.train()(torch.randn(1, 1, 2, 2, 32))  # move EMA buffers off their initial values
    model.eval()
    path = tmp_path / "tok.safetensors"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["tok.safetensors"]
    model.save(tmp_path / "again.safetensors")
    assert (tmp_path / "again.safetensors").read_bytes() == path.read_bytes()  # same model, same bytes (DVC's hash)
    loaded = Tokenizer.from_checkpoint(path, registry)
    resolved = ModelSpec.model_validate(model.spec.model_dump(mode="json"))
    assert list(resolve_components(resolved, (), registry)) == []  # the loaded spec is validated against the registry
    assert loaded.spec == resolved and not loaded.training
    x = pixels(1, 3, 5, 16, 16)
    torch.testing.assert_close(loaded(x).reconstruction, model(x).reconstruction, rtol=0, atol=0)
    torch.testing.assert_close(loaded.quantizer.cluster_size, model.quantizer.cluster_size)


def test_checkpoint_errors_are_clear(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(OmnipipeError, match="checkpoint not found"):
        Tokenizer.from_checkpoint(tmp_path / "missing.safetensors", registry)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(OmnipipeError, match="not an omnipipe tokenizer checkpoint"):
        Tokenizer.from_checkpoint(tmp_path / "plain.safetensors", registry)


def _checkpoint_with_spec(registry: Registry, path: Path, spec_text: str) -> Path:
    """A real tokenizer's weights with ``spec_text`` stored as its model spec."""
    tensors = {name: t.contiguous() for name, t in build(registry).state_dict().items()}
    path.write_bytes(save(tensors, metadata={"format": "pt", SPEC_KEY: spec_text}))
    return path


def _wide(width: int) -> str:
    spec = tiny_spec().model_dump(mode="json")
    spec["encoder"]["width"] = width
    return json.dumps(spec)


@pytest.mark.parametrize(
    ("spec_text", "message"),
    [
        ("{not json", "the stored model spec is not valid JSON (Expecting property name enclosed in double quotes"),
        ('{"patchifier": 3}', "the stored model spec does not validate: model.patchifier: Input should be"),
        (_wide(64).replace('"width": 64', '"width": "wide"', 1), "model.encoder.width: Input should be a valid integer"),
        (_wide(64).replace('"vq"', '"vqq"'), "model.quantizer.type: unknown quantizer 'vqq'"),
        ("x" * 5_000_000, "the stored model spec has 5,000,000 characters, more than the 1,048,576 a spec can need"),
        (_wide(65_536), "the stored model spec implies 103 billion parameters, more than the 2 billion omnipipe loads"),
        ("[" * 100_000, "the stored model spec is not valid JSON"),
        (_wide(64), "the weights do not match the stored model spec (Error(s) in loading state_dict for Tokenizer:"),
    ],
    ids=["not-json", "wrong-structure", "wrong-type", "unknown-component", "huge-string", "width-65536", "deep-json",
         "weights-mismatch"],
)
def test_bogus_stored_spec_is_one_line_before_anything_is_built(
    registry: Registry, tmp_path: Path, spec_text: str, message: str
) -> None:
    path = _checkpoint_with_spec(registry, tmp_path / "tok.safetensors", spec_text)
    with pytest.raises(OmnipipeError) as caught:
        Tokenizer.from_checkpoint(path, registry)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_that_is_not_safetensors_is_one_line(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(OmnipipeError, match=r"junk.safetensors: not a safetensors file \(") as caught:
        Tokenizer.from_checkpoint(tmp_path / "junk.safetensors", registry)
    assert "\n" not in str(caught.value)
