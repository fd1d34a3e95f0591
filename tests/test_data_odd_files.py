"""``prepare`` over ~40 odd files: each is prepared correctly or skipped with its reason; nothing stops the run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omnipipe.data.prepare import prepare
from omnipipe.registry import Registry
from odd_media import write_odd_media
from prepare_setup import data_registry, data_spec


@pytest.fixture
def registry() -> Registry:
    return data_registry()


def test_each_odd_file_is_prepared_or_reported(registry: Registry, tmp_path: Path) -> None:
    expected = write_odd_media(tmp_path / "media")
    names = sorted(expected)
    (tmp_path / "list.csv").write_text("".join(f"media/{name}\n" for name in names))
    data = data_spec(registry, tmp_path / "out", [{"type": "manifest", "path": str(tmp_path / "list.csv")}],
                     files_per_shard=1, val_fraction=0)  # fmt: skip

    report = prepare(data, registry, progress=False).report

    skipped = {entry["path"].removeprefix("media/"): entry for entry in report["skipped"]}
    first_frames = {}
    for number, name in enumerate(names):  # one file per unit: unit <number> holds file <number>
        manifest = json.loads((tmp_path / f"out/units/s00-u{number:05d}.json").read_text())
        shards = [np.load(tmp_path / "out" / shard["path"]) for shard in manifest["shards"]]
        first_frames[name] = shards[0][0, 0] if shards else None
    for name, (outcome, expectation) in expected.items():
        if outcome == "skip":
            assert expectation in skipped[name]["reason"], (name, skipped.get(name))
            assert (first_frames[name] is not None) == (name == "corrupt_middle.mp4"), name
        else:
            assert name not in skipped and first_frames[name] is not None, (name, skipped.get(name))
            if expectation is not None:
                assert abs(float(first_frames[name].mean()) - expectation) < 2.5, (name, first_frames[name].mean())
    assert skipped["corrupt_middle.mp4"]["clips_kept"] >= 1  # the clips before the damage are kept
    upright = first_frames["exif_rotated.jpg"]  # 32×64, left half black, EXIF "rotate 90° clockwise"
    assert upright[0].mean() < 10 and upright[-1].mean() > 190
    assert len(skipped) == sum(outcome == "skip" for outcome, _ in expected.values())
