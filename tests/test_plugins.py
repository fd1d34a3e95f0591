"""Plugins come from installed entry points: third-party packages are installed for real by pip."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omnipipe.errors import PluginError, RegistryError
from omnipipe.plugins import DISABLE_ENV, load_registry

BROKEN = ("broken-import", "misspelled-hook", "duplicate")


@pytest.fixture
def installed(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(plugin_site))
    importlib.invalidate_caches()
    return plugin_site


def _enable_only(monkeypatch: pytest.MonkeyPatch, *enabled: str) -> None:
    monkeypatch.setenv(DISABLE_ENV, ",".join(name for name in BROKEN if name not in enabled))


def _cli(site: Path, *args: str, disabled: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), DISABLE_ENV: disabled}
    return subprocess.run([sys.executable, "-m", "omnipipe.cli", *args], capture_output=True, text=True, env=env)


def test_installed_plugin_is_listed_with_its_distribution(installed: Path) -> None:
    result = _cli(installed, "components", "--kind", "quantizer", disabled=",".join(BROKEN))
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["quantizer", "sign"])
    assert "sign (omnipipe-test-signquant 1.0)" in row
    assert "Binary codes from the sign of each channel, scaled." in row


def test_installed_plugin_builds_and_validates_params(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable_only(monkeypatch)
    registry = load_registry()
    assert registry.get("quantizer", "sign").provider == "sign (omnipipe-test-signquant 1.0)"
    quantizer = registry.build("quantizer", {"type": "sign", "scale": 2.0}, dim=3)
    z = torch.tensor([[[[[0.5, -1.0, 3.0]]]]], requires_grad=True)  # (B, T, H, W, D)
    out = quantizer(z)
    assert out.z_q.tolist() == [[[[[2.0, -2.0, 2.0]]]]]
    assert out.codes.tolist() == [[[[1 + 4]]]]
    assert torch.equal(quantizer.decode_codes(out.codes), out.z_q.detach())
    out.z_q.sum().backward()
    assert z.grad is not None and torch.equal(z.grad, torch.ones_like(z))
    with pytest.raises(RegistryError, match=r"scael: extra field not permitted — did you mean scale\?"):
        registry.build("quantizer", {"type": "sign", "scael": 2.0}, dim=3)


def test_plugin_that_fails_to_import_names_distribution_and_entry_point(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable_only(monkeypatch, "broken-import")
    with pytest.raises(PluginError) as caught:
        load_registry()
    assert str(caught.value) == (
        "plugin 'broken-import' (distribution omnipipe-test-broken-import 1.0, entry point "
        "omnipipe:thirdparty_broken_import) failed to import: ModuleNotFoundError: No module named "
        f"'a_module_that_is_not_installed'; run without it with {DISABLE_ENV}=broken-import"
    )


def test_broken_plugin_is_one_line_in_the_cli_and_can_be_left_out(installed: Path) -> None:
    result = _cli(installed, "components", disabled="misspelled-hook,duplicate")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("omnipipe: error: plugin 'broken-import'")
    # leaving it out by its distribution name works too
    result = _cli(installed, "components", disabled="omnipipe-test-broken-import,misspelled-hook,duplicate")
    assert result.returncode == 0 and "sign" in result.stdout


def test_misspelled_hook_is_an_error_naming_the_plugin(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable_only(monkeypatch, "misspelled-hook")
    with pytest.raises(PluginError, match=r"^plugin 'misspelled-hook' \(distribution omnipipe-test-misspelled-hook 1\.0.*omnipipe_regster"):
        load_registry()


def test_duplicate_name_names_both_providers(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable_only(monkeypatch, "duplicate")
    with pytest.raises(PluginError) as caught:
        load_registry()
    assert "failed to register: loss 'l1' is registered twice: by builtins (omnipipe " in str(caught.value)
    assert "and by duplicate (omnipipe-test-duplicate 1.0)" in str(caught.value)


def test_debug_flag_shows_the_traceback(installed: Path) -> None:
    result = _cli(installed, "--debug", "components", disabled="misspelled-hook,duplicate")
    assert result.returncode == 2 and "Traceback" in result.stderr
