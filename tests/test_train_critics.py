"""The critics of a stage: per-critic weights, the image critic on clip frames, and their own optimiser settings.

Expected values are computed by hand from the critics' outputs (logits, features, autograd gradients),
not through ``Critics``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import VALID_SPEC
from omnipipe.errors import SpecError
from omnipipe.losses.gan import GANLoss
from omnipipe.nn.discriminators.patchgan2d import PatchGAN2d
from omnipipe.nn.discriminators.patchgan3d import PatchGAN3d
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec
from omnipipe.spec.train import DiscriminatorOptimizerSpec, StageSpec, TrainSpec
from omnipipe.train.critics import Critics
from omnipipe.train.step_draws import StepDraws

SMALL = {"channels": 4, "layers": 2}
FM = 3.0


def _pair(seed: int = 0) -> tuple[nn.ModuleDict, GANLoss, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    modules = nn.ModuleDict({"image": PatchGAN2d(PatchGAN2d.Params(**SMALL)), "video": PatchGAN3d(PatchGAN3d.Params(**SMALL))})
    gan = GANLoss(GANLoss.Params(adaptive_weight=False, feature_matching_weight=FM))
    target = torch.rand(3, 3, 5, 32, 32) * 2 - 1
    return modules, gan, target + 0.3 * torch.randn_like(target), target


def _critics(modules: nn.ModuleDict, weights: dict[str, float], on_clips: str | None, lr: float = 0.1, **settings: float) -> Critics:
    optimizer = torch.optim.SGD(modules.parameters(), lr=lr)
    return Critics(modules, weights, on_clips, optimizer, DiscriminatorOptimizerSpec(**settings))


def _hinge_generator(critic: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """−mean D(x̂) + FM · mean over blocks of L1(features(x̂), features(x)), written out."""
    logits, fake_features = critic(fake, return_features=True)
    _, real_features = critic(real, return_features=True)
    matching = sum(F.l1_loss(f, r) for f, r in zip(fake_features, real_features)) / len(fake_features)
    return -logits.mean() + FM * matching


def _hinge_discriminator(critic: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - critic(real)).mean() + F.relu(1 + critic(fake)).mean())


def _frames(x: torch.Tensor, index: list[int]) -> torch.Tensor:
    """Frame ``index[b]`` of each clip b, as a one-frame clip, by a plain loop."""
    return torch.stack([x[b, :, t] for b, t in enumerate(index)]).unsqueeze(2)


@pytest.mark.parametrize("on_clips", ["one_frame", "all_frames"])
def test_a_clip_is_judged_by_both_critics_with_their_weights(on_clips: str) -> None:
    modules, gan, recon, target = _pair()
    critics = _critics(modules, {"image": 0.25, "video": 0.01}, on_clips)
    loss, stats = critics.generator_loss(gan, recon, target, step=7)
    index = torch.randint(5, (3,), generator=StepDraws(seed=0, rank=0)(7)).tolist()  # the step's first draw
    fake, real = (_frames(recon, index), _frames(target, index)) if on_clips == "one_frame" else (recon, target)
    with torch.no_grad():
        expected = 0.01 * _hinge_generator(modules["video"], recon, target) + 0.25 * _hinge_generator(modules["image"], fake, real)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert {"g_adversarial", "feature_matching", "image_frames/g_adversarial", "image_frames/feature_matching"} <= set(stats)


def test_without_on_clips_only_the_video_critic_judges_clips_and_the_image_critic_judges_images() -> None:
    modules, gan, recon, target = _pair()
    critics = _critics(modules, {"image": 0.5, "video": 2.0}, None)
    loss, stats = critics.generator_loss(gan, recon, target, step=0)
    with torch.no_grad():
        assert loss.item() == pytest.approx(2.0 * _hinge_generator(modules["video"], recon, target).item(), rel=1e-5)
        image_loss, _ = critics.generator_loss(gan, recon[:, :, :1], target[:, :, :1], step=0)
        expected = 0.5 * _hinge_generator(modules["image"], recon[:, :, :1], target[:, :, :1])
    assert image_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not any(key.startswith("image_frames/") for key in stats)


def test_a_critic_of_weight_zero_neither_judges_nor_learns() -> None:
    """The reference's stage 2: image critic weight 0, so image batches get no adversarial term."""
    modules, gan, recon, target = _pair()
    critics = _critics(modules, {"image": 0.0, "video": 0.01}, "one_frame")
    images, image_targets = recon[:, :, :1].requires_grad_(), target[:, :, :1]
    loss, stats = critics.generator_loss(gan, images, image_targets, step=0)
    assert loss.item() == 0.0 and stats == {}
    before = [p.detach().clone() for p in modules["image"].parameters()]
    assert critics.update(gan, images, image_targets, step=0) == {}
    critics.update(gan, recon, target, step=0)  # a clip: only the video critic learns
    assert all(torch.equal(p, b) for p, b in zip(modules["image"].parameters(), before))


def test_the_critics_step_on_their_weighted_loss_and_clear_every_critics_gradient() -> None:
    modules, gan, recon, target = _pair()
    critics = _critics(modules, {"image": 0.25, "video": 0.01}, "all_frames")
    video_loss = _hinge_discriminator(modules["video"], recon, target)
    loss = 0.01 * video_loss + 0.25 * _hinge_discriminator(modules["image"], recon, target)
    expected = torch.autograd.grad(loss, list(modules.parameters()))
    for p in modules.parameters():  # stale gradients must not be used
        p.grad = torch.full_like(p, 5.0)
    before = [p.detach().clone() for p in modules.parameters()]
    stats = critics.update(gan, recon, target, step=0)
    for p, old, grad in zip(modules.parameters(), before, expected):
        assert torch.allclose(p, old - 0.1 * grad, atol=1e-7)
    assert stats["d_loss"].item() == pytest.approx(video_loss.item(), rel=1e-6)

    # an image batch next: the video critic has no gradient and is left alone (not stepped on its last one)
    video_before = [p.detach().clone() for p in modules["video"].parameters()]
    critics.update(gan, recon[:, :, :1], target[:, :, :1], step=0)
    assert all(p.grad is None for p in modules["video"].parameters())
    assert all(torch.equal(p, b) for p, b in zip(modules["video"].parameters(), video_before))


def test_the_gradient_clip_bounds_the_critics_update() -> None:
    modules, gan, recon, target = _pair()
    critics = _critics(modules, {"image": 1.0, "video": 1.0}, "one_frame", grad_clip=1e-3)
    video = modules["video"]
    grads = torch.autograd.grad(_hinge_discriminator(video, recon, target), list(video.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert norm > 1e-3  # the clip acts
    before = [p.detach().clone() for p in video.parameters()]
    critics.on_clips = None  # the video critic alone, so its gradient is known
    stats = critics.update(gan, recon, target, step=0)
    assert stats["d_grad_norm"].item() == pytest.approx(norm.item(), rel=1e-5)
    for p, old, grad in zip(video.parameters(), before, grads):
        assert torch.allclose(p, old - 0.1 * grad * 1e-3 / (norm + 1e-6), atol=1e-9)


def test_an_update_is_skipped_when_the_weighted_loss_is_below_the_threshold() -> None:
    modules, gan, recon, target = _pair()
    d_loss = _hinge_discriminator(modules["video"], recon, target).item()  # about 1 for fresh critics
    before = [p.detach().clone() for p in modules.parameters()]
    above = _critics(modules, {"image": 1.0, "video": 0.01}, None, skip_below=0.02 * d_loss)  # 0.01 · d_loss < it
    assert above.update(gan, recon, target, step=0)["d_skipped"].item() == 1.0
    assert all(torch.equal(p, b) for p, b in zip(modules.parameters(), before))
    below = _critics(modules, {"image": 1.0, "video": 0.01}, None, skip_below=0.005 * d_loss)
    assert below.update(gan, recon, target, step=0)["d_skipped"].item() == 0.0
    assert not all(torch.equal(p, b) for p, b in zip(modules["video"].parameters(), before[-len(before) // 2 :]))


def _train_spec(image: str, stages: str, video: str | None = None) -> TrainSpec:
    on_clips = f", on_clips: {video}" if video else ""
    text = VALID_SPEC.replace(
        "  stages:\n    image_pretrain: {data: images, steps: 10, batch_size: 4}\n"
        "    joint: {data: joint, steps: 10, batch_size: 4, init_from: image_pretrain}\n",
        f"    adversarial: {{type: gan}}\n  discriminators:\n    image: {image}\n"
        f"    video: {{type: patchgan3d, channels: 4, layers: 2{on_clips}}}\n" + stages,
    )
    return parse_spec(text, source="unit.yaml", registry=get_registry()).train


def test_stage_settings_give_the_critics_their_weights_learning_rate_and_warm_up() -> None:
    train = _train_spec(
        "{type: patchgan2d, channels: 4, layers: 2, weight: 0.5, on_clips: one_frame}",
        "  stages:\n    joint:\n      data: joint\n      steps: 10\n      batch_size: 4\n"
        "      optimizer: {lr: 1.0e-3}\n      schedule: {name: cosine, warmup_steps: 2, min_lr_ratio: 0.1}\n"
        "      discriminator_weights: {image: 0.0}\n"
        "      discriminator_optimizer: {lr_multiplier: 0.1, warmup_steps: 4}\n",
    )
    critics = Critics.of_stage(train, train.stages["joint"], get_registry(), torch.device("cpu"))
    assert critics.weights == {"image": 0.0, "video": 1.0} and critics.on_clips == "one_frame"
    lrs = []
    for _ in range(6):
        lrs.append(critics.optimizer.param_groups[0]["lr"])
        critics.after_step()
    warm = [1e-4 * (step + 1) / 4 for step in range(4)]  # linear to 0.1 · 1e-3 over 4 steps, then the cosine
    cosine = [1e-4 * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * k / 6)).item())) for k in (0, 1)]
    assert lrs == pytest.approx(warm + cosine)


def test_by_default_the_critics_keep_the_stages_constant_learning_rate() -> None:
    train = _train_spec(
        "{type: patchgan2d, channels: 4, layers: 2}",
        "  stages:\n    joint: {data: joint, steps: 10, batch_size: 4, optimizer: {lr: 1.0e-3}, schedule: {warmup_steps: 3}}\n",
    )
    critics = Critics.of_stage(train, train.stages["joint"], get_registry(), torch.device("cpu"))
    assert critics.scheduler is None and critics.weights == {"image": 1.0, "video": 1.0} and critics.on_clips is None
    assert critics.optimizer.param_groups[0]["lr"] == 1e-3
    assert StageSpec(data="joint", steps=1, batch_size=1).discriminator_optimizer == DiscriminatorOptimizerSpec()


@pytest.mark.parametrize(
    ("image", "stages", "expected"),
    [
        ("{type: patchgan2d}", "  stages:\n    joint: {data: joint, steps: 1, batch_size: 1, discriminator_weights: {audio: 1.0}}\n",
         "train.stages.joint.discriminator_weights.audio: Input should be 'image' or 'video'"),
        ("{type: patchgan2d, weight: -1}", "  stages:\n    joint: {data: joint, steps: 1, batch_size: 1}\n",
         "train.discriminators.image.weight: Input should be greater than or equal to 0 (got -1)"),
        ("{type: patchgan2d, on_clips: every}", "  stages:\n    joint: {data: joint, steps: 1, batch_size: 1}\n",
         "train.discriminators.image.on_clips: Input should be 'one_frame' or 'all_frames' (got 'every')"),
        ("{type: patchgan2d}",
         "  stages:\n    joint: {data: joint, steps: 1, batch_size: 1, discriminator_optimizer: {lr_multipler: 0.1}}\n",
         "train.stages.joint.discriminator_optimizer.lr_multipler: extra field not permitted — did you mean lr_multiplier?"),
    ],
    ids=["unknown-critic", "negative-weight", "bad-on-clips", "misspelled-key"],
)
def test_bad_critic_settings_are_one_located_line(image: str, stages: str, expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        _train_spec(image, stages)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_weight_for_an_absent_critic_and_frames_for_the_video_critic_are_refused() -> None:
    text = VALID_SPEC.replace(
        "init_from: image_pretrain}", "init_from: image_pretrain, discriminator_weights: {video: 0.0}}"
    ).replace("  stages:\n", "    adversarial: {type: gan}\n  discriminators:\n    image: {type: patchgan2d}\n  stages:\n")
    with pytest.raises(SpecError, match=r"^unit.yaml:\d+: train.stages.joint.discriminator_weights.video: "
                       r"no 'video' critic in train.discriminators \(have: image\)$"):
        parse_spec(text, source="unit.yaml", registry=get_registry())
    with pytest.raises(SpecError, match=r"train.discriminators.video.on_clips: only the image critic judges clip frames$"):
        _train_spec("{type: patchgan2d}", "  stages:\n    joint: {data: joint, steps: 1, batch_size: 1}\n", video="one_frame")
