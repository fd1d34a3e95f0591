"""Decode media into uint8 RGB frames: images with Pillow, videos with PyAV (resampled, cut into clips)."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import av
import numpy as np
from PIL import Image

from omnipipe.data.errors import DecodeError
from omnipipe.data.media import ClipSampling

HW = tuple[int, int]  # (height, width)


def cover_size(height: int, width: int, target: HW) -> HW:
    """The smallest size with the aspect of ``height × width`` that covers ``target``."""
    scale = max(target[0] / height, target[1] / width)
    return max(target[0], math.ceil(height * scale - 1e-6)), max(target[1], math.ceil(width * scale - 1e-6))


def shrink_size(height: int, width: int, target: HW) -> HW:
    """``cover_size`` when that is smaller than the source, else the source size (never upscale here)."""
    covered = cover_size(height, width, target)
    return covered if covered[0] < height else (height, width)


def cover_crop(frame: np.ndarray, target: HW) -> np.ndarray:
    """Resize ``frame`` (H, W, 3) to cover ``target`` keeping its aspect, then crop the centre."""
    height, width = frame.shape[:2]
    resized_h, resized_w = cover_size(height, width, target)
    if (resized_h, resized_w) != (height, width):
        image = Image.fromarray(frame).resize((resized_w, resized_h), Image.Resampling.BICUBIC)
        frame = np.asarray(image)
    top, left = (resized_h - target[0]) // 2, (resized_w - target[1]) // 2
    return frame[top : top + target[0], left : left + target[1]]


def read_image(path: Path, fit: HW) -> np.ndarray:
    """An image as a one-frame clip (1, H, W, 3), decoded at no less than what covers ``fit``."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (fit[1], fit[0]))  # JPEG: decode at a reduced scale; a no-op otherwise
            rgb = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DecodeError(f"unreadable image: {error}") from None
    frame = np.asarray(rgb)
    return cover_crop(frame, shrink_size(*frame.shape[:2], fit))[None]


def _resampled(container: av.container.InputContainer, fps: float) -> Iterator[av.VideoFrame]:
    """Frames at ``fps``: for each target time the frame on screen then (so frames repeat or drop)."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    duration = 1.0 / float(stream.average_rate or fps)
    target: float | None = None
    shown: av.VideoFrame | None = None
    shown_time = 0.0
    for index, frame in enumerate(chain(container.decode(stream), [None])):
        if frame is None:  # the end: the last frame stays on screen for one frame duration
            time = shown_time + duration
        else:
            time = frame.time if frame.time is not None else index * duration
        target = time if target is None else target
        while shown is not None and target < time - 1e-6:
            yield shown
            target += 1.0 / fps
        shown, shown_time = frame, time


def read_video_clips(path: Path, sampling: ClipSampling, fit: HW, max_clips: int | None = None) -> list[np.ndarray]:
    """Clips (T, h, w, 3) of a video resampled to ``sampling.fps``; frames are shrunk to cover ``fit``.

    Decoding stops once ``max_clips`` clips are cut, so long videos cost only what is used.
    """
    clips: list[np.ndarray] = []
    window: deque[np.ndarray] = deque(maxlen=sampling.frames)
    resampled = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError("no video stream")
            previous, rgb = None, None
            for frame in _resampled(container, sampling.fps):
                if frame is not previous:
                    height, width = shrink_size(frame.height, frame.width, fit)
                    rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
                    previous = frame
                window.append(rgb)
                resampled += 1
                start = resampled - sampling.frames
                if start >= 0 and start % sampling.stride == 0:
                    clips.append(np.stack(window))
                    if max_clips is not None and len(clips) >= max_clips:
                        return clips
    except (av.FFmpegError, OSError, ValueError) as error:
        raise DecodeError(f"undecodable video: {error}") from None
    if not clips:
        raise DecodeError(
            f"shorter than one clip: {resampled} frames at {sampling.fps:g} fps, a clip needs {sampling.frames}"
        )
    return clips
