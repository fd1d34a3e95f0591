"""The ``ldm`` generator: adaLN-Zero, attention scopes, guidance on every channel, frame prediction, latent scaling."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from omnipipe.generate.contract import GenerationError, TokenBatch, TokenLayout
from omnipipe.generate.dit_blocks import AdaLNZeroBlock
from omnipipe.generate.gaussian_baseline import GaussianLatents
from omnipipe.generate.latent_scaling import LatentScaling
from omnipipe.generate.ldm import LatentDiffusionGenerator
from omnipipe.generate.transformer import axial_angles

SMALL = {"width": 32, "depth": 2, "num_heads": 2}
VIDEO = TokenLayout.grid_of("latents", (3, 4, 4), 4, num_classes=3)


def _model(layout: TokenLayout = VIDEO, seed: int | None = 0, **params: object) -> LatentDiffusionGenerator:
    """A model with fitted scaling; with ``seed``, every weight random (fresh adaLN-Zero models predict 0)."""
    model = LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**{**SMALL, **params}), layout)
    generator = torch.Generator().manual_seed(1)
    data = 2.0 + 3.0 * torch.randn(16, layout.length, layout.channels, generator=generator)
    model.fit_token_statistics([data])
    if seed is not None:
        generator.manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def _draw(model: LatentDiffusionGenerator, labels: list[int], seed: int = 0, **settings: object) -> torch.Tensor:
    return model.sample(torch.tensor(labels), generator=torch.Generator().manual_seed(seed), **settings)


def _angles(frames: int, spots: int, head_dim: int) -> torch.Tensor:
    grid = torch.stack(torch.meshgrid(torch.arange(frames), torch.arange(spots), torch.arange(1), indexing="ij"), -1)
    return axial_angles(grid.reshape(-1, 3), head_dim).reshape(frames, spots, -1)


@pytest.mark.parametrize("blocks", ["full", "spatial_temporal"])
def test_adaln_zero_blocks_of_a_fresh_model_are_identity_maps_and_its_output_is_zero(blocks: str) -> None:
    model = LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL, blocks=blocks), VIDEO)
    x = torch.randn(2, 3, 16, 32)
    c = torch.randn(2, 3, 32)
    for block in model.blocks:
        assert torch.equal(block(x, c, _angles(3, 16, 16)), x)
    latents = torch.randn(2, 3, 4, 4, 4)
    assert torch.equal(model.predict(latents, torch.rand(2, 3), torch.tensor([0, 3])), torch.zeros_like(latents))
    assert [block.scope for block in model.blocks] == (["full", "full"] if blocks == "full" else ["spatial", "temporal"])


@pytest.mark.parametrize(("scope", "reached"), [("full", "all"), ("spatial", "frame"), ("temporal", "position")])
def test_attention_scopes(scope: str, reached: str) -> None:
    """Changing token (frame 0, position 5) changes exactly the tokens its scope lets attend to it."""
    torch.manual_seed(0)
    block = AdaLNZeroBlock(16, 2, 2.0, 0.0, scope)
    torch.nn.init.normal_(block.modulation[1].weight, std=0.5)
    x, c, angles = torch.randn(1, 3, 6, 16), torch.randn(1, 3, 16), _angles(3, 6, 8)
    changed = x.clone()
    changed[0, 0, 5] += torch.randn(16)  # not a constant shift: LayerNorm would remove that
    moved = (block(changed, c, angles) - block(x, c, angles)).abs().sum(-1)[0] > 1e-6  # (T', S)
    expected = torch.zeros(3, 6, dtype=torch.bool)
    expected[0, 5] = True
    if reached == "all":
        expected[:] = True
    elif reached == "frame":
        expected[0] = True
    else:
        expected[:, 5] = True
    assert torch.equal(moved, expected)


def test_patchify_round_trip_and_patch_contents() -> None:
    model = _model(TokenLayout.grid_of("latents", (2, 4, 6), 3), patch_size=2)
    x = torch.randn(2, 2, 4, 6, 3)
    patches = model.patchify(x)  # (B, T', S, 4·C)
    assert patches.shape == (2, 2, 6, 12)
    assert torch.equal(patches[1, 1, 4].reshape(2, 2, 3), x[1, 1, 2:4, 2:4])  # row 1, column 1 of a 2×3 patch grid
    assert torch.equal(model.unpatchify(patches, 4, 6), x)


def test_guidance_acts_on_every_latent_channel() -> None:
    """One Euler step is affine in the prediction, so samples obey u + s·(c − u) exactly — in all channels."""
    model = _model()
    labels = [0, 1, 2]
    conditional = _draw(model, labels, steps=1)
    unconditional = _draw(model, [-1] * 3, steps=1)
    assert not torch.allclose(conditional, unconditional, atol=1e-3)
    for scale in (0.0, 2.5, 4.0):
        guided = _draw(model, labels, steps=1, cfg_scale=scale)
        expected = unconditional + scale * (conditional - unconditional)
        torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-3)  # float32 sums in another order (batch of 2B), × scale
        assert (guided - conditional).abs().amax((0, 1)).min() > 1e-3 or scale == 1.0  # each channel moved
    assert torch.equal(_draw(model, labels, cfg_scale=1.0, steps=3), _draw(model, labels, steps=3))


def test_linear_guidance_schedule_reaches_the_scale_at_the_last_step() -> None:
    model = _model()
    last_only = _draw(model, [0, 1], steps=1, cfg_scale=3.0, cfg_schedule="linear")
    assert torch.allclose(last_only, _draw(model, [0, 1], steps=1, cfg_scale=3.0), atol=1e-5)


@pytest.mark.parametrize(("objective", "sampler"), [("flow", "euler"), ("flow", "heun"), ("ddpm", "ddim")])
def test_frame_prediction_keeps_the_given_frames_and_feeds_them_clean(objective: str, sampler: str) -> None:
    model = _model(objective=objective)
    prefix = 2.0 + 3.0 * torch.randn(2, 16, 4, generator=torch.Generator().manual_seed(7))  # one latent frame of 4×4
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    forward = model.predict

    def recording(x: torch.Tensor, time: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        seen.append((x[:, 0].clone(), time.clone()))
        return forward(x, time, classes)

    model.predict = recording
    out = _draw(model, [0, 2], steps=3, sampler=sampler, cfg_scale=2.0)
    seen.clear()
    given = model.sample(torch.tensor([0, 2]), prefix=prefix, generator=torch.Generator().manual_seed(0), steps=3,
                         sampler=sampler, cfg_scale=2.0)  # fmt: skip
    assert torch.equal(given[:, :16], prefix)  # bit for bit
    assert not torch.allclose(given[:, 16:], out[:, 16:])  # the rest depends on the given frame
    clean = model.scaling.normalize(prefix.reshape(2, 4, 4, 4)).repeat(2, 1, 1, 1)  # guided: both halves
    levels = {"euler": [1, 2 / 3, 1 / 3], "heun": [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0], "ddim": [1.0, 0.666, 0.333]}[sampler]
    assert len(seen) == len(levels)
    for (first_frame, time), level in zip(seen, levels):
        assert torch.equal(first_frame, clean) and torch.equal(time[:, 0], torch.zeros(4))
        assert torch.allclose(time[:, 1:], torch.full((4, 2), float(level)), atol=1e-6)


def test_training_with_given_frames_feeds_them_clean_and_puts_no_loss_on_them() -> None:
    model = _model(prefix_frames=2, prefix_probability=1.0).train()
    tokens = 2.0 + 3.0 * torch.randn(4, VIDEO.length, 4, generator=torch.Generator().manual_seed(2))
    batch = TokenBatch(tokens, torch.zeros(4, dtype=torch.long))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def fake(x: torch.Tensor, time: torch.Tensor, classes: torch.Tensor, given_value: float) -> torch.Tensor:
        seen.append((x[:, :2].clone(), time.clone()))
        out = torch.zeros_like(x)
        out[:, :2] = given_value  # whatever is predicted for the given frames must not count
        return out

    losses = []
    for value in (0.0, 1e3):
        torch.manual_seed(0)
        model.predict = lambda x, time, classes, value=value: fake(x, time, classes, value)
        losses.append(float(model.losses(batch)["mse"]))
    assert losses[0] == losses[1] and losses[0] > 0
    clean = model.scaling.normalize(tokens.reshape(4, 3, 4, 4, 4)[:, :2])
    for given, time in seen:
        assert torch.equal(given, clean) and torch.equal(time[:, :2], torch.zeros(4, 2)) and bool((time[:, 2] > 0).all())


def test_latent_scaling_fits_streamed_statistics_and_round_trips() -> None:
    generator = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([1.0, -4.0, 0.0, 10.0]), torch.tensor([0.5, 2.0, 7.0, 1e-3])
    data = mean + std * torch.randn(50, 20, 4, generator=generator, dtype=torch.float64)
    scaling = LatentScaling(4).double()
    scaling.fit(data[i : i + 7] for i in range(0, 50, 7))  # streamed in uneven batches
    flat = data.reshape(-1, 4)
    assert torch.allclose(scaling.mean, flat.mean(0), atol=1e-12) and torch.allclose(scaling.std, flat.std(0), atol=1e-12)
    normalized = scaling.normalize(data)
    assert torch.allclose(normalized.reshape(-1, 4).mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(normalized.reshape(-1, 4).std(0), torch.ones(4, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(scaling.denormalize(normalized), data, atol=1e-12)
    constant = LatentScaling(1)
    constant.fit([torch.full((3, 5, 1), 2.0)])
    assert float(constant.std) > 0 and torch.equal(constant.normalize(torch.full((1, 1), 2.0)), torch.zeros(1, 1))


def test_latent_statistics_are_saved_with_the_weights() -> None:
    model = _model()
    fresh = LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL), VIDEO)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.scaling.mean, model.scaling.mean) and bool(fresh.scaling.fitted)
    assert torch.equal(_draw(fresh.eval(), [0, 1], steps=2), _draw(model, [0, 1], steps=2))


def test_training_refuses_unfitted_latent_scaling() -> None:
    model = LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL), VIDEO).train()
    with pytest.raises(GenerationError, match="latent scaling not fitted"):
        model.losses(TokenBatch(torch.randn(2, VIDEO.length, 4), torch.zeros(2, dtype=torch.long)))


def test_a_tiny_model_learns_two_class_patterns() -> None:
    """Two classes, each one fixed latent pattern: after training, samples land near their class's pattern."""
    torch.manual_seed(0)
    layout = TokenLayout.grid_of("latents", (1, 2, 2), 2, num_classes=2)
    model = LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL), layout)
    patterns = torch.tensor([[[1.0, -1.0], [0.5, 0.5], [-1.0, 1.0], [0.0, 2.0]], [[-1.0, 1.0], [2.0, 0.0], [1.0, 1.0], [0.0, -2.0]]])
    labels = torch.arange(64) % 2
    batch = TokenBatch(patterns[labels], labels)
    model.fit_token_statistics([batch.tokens])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(200):
        optimizer.zero_grad()
        model.losses(batch)["mse"].backward()
        optimizer.step()
    samples = _draw(model.eval(), [0, 1, 0, 1], steps=20)
    assert (samples - patterns[[0, 1, 0, 1]]).abs().max() < 0.6  # the classes' patterns are ≥ 2 apart


def test_same_seed_same_samples() -> None:
    model = _model()
    assert torch.equal(_draw(model, [0, 1], seed=3, steps=2), _draw(model, [0, 1], seed=3, steps=2))
    assert not torch.equal(_draw(model, [0, 1], seed=3, steps=2), _draw(model, [0, 1], seed=4, steps=2))


def test_an_image_is_a_one_frame_video() -> None:
    """A video model runs unchanged on one latent frame (positions are RoPE, not a fixed table)."""
    model = _model(blocks="spatial_temporal")
    image = model.predict(torch.randn(2, 1, 4, 4, 4), torch.rand(2, 1), torch.tensor([0, 1]))
    assert image.shape == (2, 1, 4, 4, 4) and bool(torch.isfinite(image).all())


def test_bad_input_is_one_clear_line() -> None:
    with pytest.raises(GenerationError, match="models continuous latents, but these tokens are integer codes"):
        LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL), TokenLayout.grid_of("codes", (1, 4, 4), 16))
    with pytest.raises(GenerationError, match="patch_size 2 does not divide the latent grid 4×5"):
        LatentDiffusionGenerator(LatentDiffusionGenerator.Params(**SMALL, patch_size=2), TokenLayout.grid_of("latents", (1, 4, 5), 4))
    model = _model()
    with pytest.raises(GenerationError, match="sampler 'ddim' does not fit objective 'flow'"):
        _draw(model, [0], sampler="ddim")
    with pytest.raises(ValidationError, match="sampler"):
        _draw(model, [0], sampler="dpm")
    with pytest.raises(ValidationError, match="greater than 0"):
        _draw(model, [0], steps=0)
    with pytest.raises(GenerationError, match="not 1 … 2 whole latent frames"):
        model.sample(torch.tensor([0]), prefix=torch.zeros(1, 10, 4))
    unconditional = _model(TokenLayout.grid_of("latents", (1, 2, 2), 4))
    with pytest.raises(GenerationError, match="class-conditional"):
        _draw(unconditional, [-1], cfg_scale=2.0)


def test_gaussian_baseline_draws_independent_latents_with_the_train_moments() -> None:
    layout = TokenLayout.grid_of("latents", (1, 4, 4), 3)
    train = torch.tensor([1.0, -2.0, 5.0]) + torch.tensor([0.5, 3.0, 0.1]) * torch.randn(200, 16, 3, generator=torch.Generator().manual_seed(0))
    baseline = GaussianLatents(layout, [train[:120], train[120:]])
    drawn = baseline.sample(2000, torch.Generator().manual_seed(1))
    assert drawn.shape == (2000, 16, 3)
    assert torch.allclose(drawn.reshape(-1, 3).mean(0), train.reshape(-1, 3).mean(0), atol=0.02)
    assert torch.allclose(drawn.reshape(-1, 3).std(0), train.reshape(-1, 3).std(0), rtol=0.02)
    assert abs(float(torch.corrcoef(drawn[:, :2, 1].T)[0, 1])) < 0.05  # positions are independent
    with pytest.raises(GenerationError, match="needs continuous latents"):
        GaussianLatents(TokenLayout.grid_of("codes", (1, 2, 2), 8), [])
