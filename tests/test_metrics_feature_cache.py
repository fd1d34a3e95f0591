"""The on-disk feature cache: the same values as computing them, computed once per input and network."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from omnipipe.metrics import feature_cache
from omnipipe.metrics.feature_cache import cached_features, features_folder


class CountingNetwork:
    """A stand-in feature network that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return pixels.flatten(1).double().cumsum(1)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_same_input_is_computed_once_and_gives_the_same_values() -> None:
    network = CountingNetwork()
    features = cached_features("net A", network)
    pixels = torch.rand(3, 1, 2, 4, 4)
    first, second = features(pixels), features(pixels.clone())
    assert network.calls == 1
    assert torch.equal(first, network(pixels)) and torch.equal(second, first)
    assert first.dtype == torch.float64


def test_other_pixels_or_another_network_are_other_entries() -> None:
    network = CountingNetwork()
    pixels = torch.rand(2, 3, 1, 4, 4)
    cached_features("net A", network)(pixels)
    changed = pixels.clone()
    changed[1, 2, 0, 3, 3] += 1e-6
    assert torch.equal(cached_features("net A", network)(changed), CountingNetwork()(changed))
    cached_features("net B", network)(pixels)
    cached_features("net A", network)(pixels.reshape(2, 3, 1, 2, 8))  # same bytes, other shape
    assert network.calls == 4
    assert len(list(features_folder().iterdir())) == 4


def test_a_damaged_entry_is_computed_again(caplog: pytest.LogCaptureFixture) -> None:
    network = CountingNetwork()
    pixels = torch.rand(2, 3, 1, 4, 4)
    expected = cached_features("net A", network)(pixels)
    (entry,) = features_folder().iterdir()
    entry.write_bytes(entry.read_bytes()[:20])
    with caplog.at_level(logging.WARNING):
        again = cached_features("net A", network)(pixels)
    assert network.calls == 2 and torch.equal(again, expected)
    assert str(entry) in caplog.text


def test_only_the_oldest_own_entries_are_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feature_cache, "MAX_ENTRIES", 2)
    features_folder().mkdir(parents=True)
    foreign = features_folder() / "notes.txt"
    foreign.write_text("not ours")
    network = CountingNetwork()
    inputs = [torch.full((1, 1, 1, 2, 2), float(i)) for i in range(4)]
    for pixels in inputs:
        cached_features("net A", network)(pixels)
    kept = sorted(path.name for path in features_folder().iterdir())
    assert len(kept) == 3 and foreign.is_file()
    for pixels in inputs[2:]:  # the newest two are still cached
        cached_features("net A", network)(pixels)
    assert network.calls == 4
