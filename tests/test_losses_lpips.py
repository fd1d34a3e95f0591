"""LPIPS: a missing backbone is one clear error; the proxy is labelled; a weights file is loaded and used."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from omnipipe.errors import OmnipipeError
from omnipipe.losses.lpips import BackboneWeightsError, LPIPSLoss


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch home, so the real hub cache is never read."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_missing_backbone_names_the_file_and_where_it_goes(torch_home: Path) -> None:
    expected = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    with pytest.raises(BackboneWeightsError) as caught:
        LPIPSLoss(LPIPSLoss.Params())
    assert isinstance(caught.value, OmnipipeError)
    assert str(caught.value) == (
        f"lpips: the 'vgg' backbone needs torchvision's ImageNet weights file vgg16-397923af.pth at {expected} "
        "(copy it there, or set backbone_path; allow_random_backbone: true gives a proxy)"
    )


def test_missing_explicit_backbone_path_is_named(tmp_path: Path) -> None:
    path = tmp_path / "alex.pth"
    with pytest.raises(BackboneWeightsError, match=f"alex.pth at {path} "):
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(path)))


def test_random_backbone_is_a_labelled_frozen_proxy(torch_home: Path) -> None:
    loss = LPIPSLoss(LPIPSLoss.Params(net="squeeze", allow_random_backbone=True))
    assert loss.is_proxy and loss.name == "lpips_proxy"
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
    # a fixed seed: every proxy is the same function
    again = LPIPSLoss(LPIPSLoss.Params(net="squeeze", allow_random_backbone=True))
    assert torch.equal(again(y, x), value)


def test_backbone_file_is_loaded_with_weights_only(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert not loss.is_proxy and loss.name == "lpips"
    assert calls[-1] is True
    trunk = loss.model.net
    for name, tensor in trunk.state_dict().items():
        assert torch.equal(tensor, features["features." + name.split(".", 1)[1]])
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(trunk(images).relu2_2, vgg.features[:9](images))
        x = torch.rand(1, 3, 1, 32, 32) * 2 - 1
        assert loss(x, x).item() == 0.0 and loss(x, -x).item() > 0


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not_alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(BackboneWeightsError, match="not torchvision's 'alex' ImageNet state dict"):
        LPIPSLoss(LPIPSLoss.Params(net="alex", backbone_path=str(path)))
