"""The train/val split: the timeline split never puts a frame (or its neighbour) of a val clip in train;
on the tiny pipeline's real data no val frame equals a train frame."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from omnipipe.data.components import register
from omnipipe.data.media import ClipSampling
from omnipipe.data.prepare import prepare
from omnipipe.data.shards import PreparedIndex
from omnipipe.data.split import clip_splits, split_of, timeline_splits
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec

TINY = Path(__file__).resolve().parents[1] / "pipelines" / "tiny.yaml"


def frames_of(clip: int, sampling: ClipSampling) -> set[int]:
    return set(range(clip * sampling.stride, clip * sampling.stride + sampling.frames))


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_timeline_spans_are_a_clip_apart_and_val_clips_are_distinct(fraction: float) -> None:
    cut = 0
    for frames in range(1, 10):
        for stride in range(1, 8):
            sampling = ClipSampling(8.0, frames, stride)
            for clips in range(1, 45):
                splits = timeline_splits(clips, sampling, fraction)
                if splits is None:
                    continue
                cut += 1
                assert len(splits) == clips and "train" in splits and "val" in splits
                val = [i for i, s in enumerate(splits) if s == "val"]
                train = set().union(*(frames_of(i, sampling) for i, s in enumerate(splits) if s == "train"))
                val_frames = [frames_of(i, sampling) for i in val]
                assert sum(map(len, val_frames)) == len(set().union(*val_frames))  # no frame in two val clips
                assert max(train) + frames < min(min(f) for f in val_frames)  # a gap of at least one clip
                assert val[-1] == clips - 1  # the val span runs to the end of the video
    assert cut > 500


def test_short_videos_and_images_go_whole_by_their_key() -> None:
    sampling = ClipSampling(8.0, 5, 2)
    assert timeline_splits(3, sampling, 0.25) is None  # 3 clips cannot hold val, a gap and train
    for key in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        assert clip_splits(key, 3, "timeline", 0.5, sampling) == [split_of(key, 0.5)] * 3
        assert clip_splits(key, 1, "timeline", 0.5, sampling) == [split_of(key, 0.5)]
        assert clip_splits(key, 20, "file", 0.5, sampling) == [split_of(key, 0.5)] * 20
    assert clip_splits("v.mp4", 4, "clip", 0.5, sampling) == [split_of(f"v.mp4#{n}", 0.5) for n in range(4)]
    assert timeline_splits(20, sampling, 0.0) is None


def test_no_val_frame_of_the_tiny_data_equals_a_train_frame(tmp_path: Path) -> None:
    registry = Registry()
    register(registry)
    settings = yaml.safe_load(TINY.read_text())["data"]
    data = DataSpec.model_validate({**settings, "prepared_dir": str(tmp_path / "prepared")})
    for entry in data.sources:
        entry.resolve(registry)
    report = prepare(data, registry, progress=False).report
    index = PreparedIndex.load(tmp_path / "prepared")
    hashes: dict[str, set[str]] = {"train": set(), "val": set()}
    for (split, _, _), pool in index.pools.items():
        for clip in pool.read(np.arange(len(pool))):
            hashes[split] |= {hashlib.sha256(frame.tobytes()).hexdigest() for frame in clip}
    assert not hashes["train"] & hashes["val"]
    resolutions = len(data.resolutions)
    assert len(hashes["val"]) // resolutions >= 40  # distinct val frames: not a handful
    assert report["splits"]["val"]["video"] >= 8 and report["splits"]["val"]["image"] >= 5
