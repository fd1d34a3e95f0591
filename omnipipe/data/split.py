"""Deterministic train/val split from a hash of a stable key, so adding files never moves old ones.

``split_unit`` decides what is split:

- ``file``: whole files by a hash of their key — no clip of a video is in both splits;
- ``timeline``: files by their key hash, except that a video long enough is cut along its timeline:
  the last ``val_fraction`` of its clips is val (only clips that do not overlap each other, so each
  val clip is a distinct sample), the clips before them are train, and every clip that would come
  closer than one clip length to the first val frame is dropped — no val frame is a train frame, and
  none is next to one;
- ``clip``: each clip by a hash of key + clip number. Overlapping clips of one video then land in both
  splits (``clip_stride < clip_frames`` shares frames): only for images, or for videos cut without overlap.
"""
from __future__ import annotations

import hashlib
import math
from typing import Literal

from omnipipe.data.media import ClipSampling

Split = Literal["train", "val"]
SplitUnit = Literal["file", "timeline", "clip"]
SPLITS: tuple[Split, ...] = ("train", "val")


def split_of(key: str, val_fraction: float) -> Split:
    """``val`` for a fraction ``val_fraction`` of keys, decided by the key alone."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def timeline_splits(clips: int, sampling: ClipSampling, val_fraction: float) -> list[Split | None] | None:
    """Train, val or dropped (None) for each of a video's ``clips`` (clip i starts at frame i·stride);
    None when the video is too short for a val span, a one-clip gap and a train clip."""
    wanted = max(1, round(clips * val_fraction)) if val_fraction > 0 else 0
    if wanted == 0 or wanted >= clips:
        return None
    step = math.ceil(sampling.frames / sampling.stride)  # clips this far apart share no frame
    val = set(range(clips - 1, clips - 1 - wanted, -step))
    first_val_frame = min(val) * sampling.stride
    last_train = (first_val_frame - 2 * sampling.frames) // sampling.stride  # its end + one clip ≤ first val frame
    if last_train < 0:
        return None
    return ["val" if i in val else "train" if i <= last_train else None for i in range(clips)]


def clip_splits(key: str, clips: int, unit: SplitUnit, val_fraction: float, sampling: ClipSampling) -> list[Split | None]:
    """The split of each clip of the file ``key`` (an image is one clip); None drops the clip."""
    if unit == "clip":
        return [split_of(f"{key}#{number}", val_fraction) for number in range(clips)]
    cut = timeline_splits(clips, sampling, val_fraction) if unit == "timeline" and clips > 1 else None
    return cut if cut is not None else [split_of(key, val_fraction)] * clips
