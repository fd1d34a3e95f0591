"""How reports name a weights file that ships inside an installed package: the same in every environment."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from omnipipe.metrics import packaged_weights
from omnipipe.metrics.packaged_weights import describe_package_file


def test_a_package_file_is_named_from_its_package_folder_wherever_it_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packaged_weights, "distribution_version", lambda name: "1.2.3")
    digest = hashlib.sha256(b"weights").hexdigest()[:12]
    for root in ("venv-a/lib/python3.11/site-packages", "demo_pkg/site-packages"):  # the name again above it
        path = tmp_path / root / "demo_pkg" / "weights" / "net.ckpt"
        path.parent.mkdir(parents=True)
        (path.parents[1] / "__init__.py").write_text("")
        path.write_bytes(b"weights")
        with monkeypatch.context() as installed:
            installed.setattr(sys, "path", [str(tmp_path / root), *sys.path])
            assert describe_package_file("demo-pkg", "demo_pkg", path) == f"demo-pkg 1.2.3: demo_pkg/weights/net.ckpt (sha256 {digest}…)"
    elsewhere = tmp_path / "copy.ckpt"
    elsewhere.write_bytes(b"weights")
    assert describe_package_file("demo-pkg", "demo_pkg", elsewhere) == f"demo-pkg 1.2.3: {elsewhere} (sha256 {digest}…)"
