"""Decode media into uint8 RGB frames: images with Pillow, videos with PyAV (resampled, cut into clips)."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from omnipipe.data.errors import DecodeError, PartialDecodeError, ShortVideoError
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
    """An image as a one-frame clip (1, H, W, 3), decoded at no less than what covers ``fit``.

    EXIF orientation is applied; high-bit-depth greyscale is scaled to 8 bits (see ``rgb_frame``).
    """
    try:
        with Image.open(path) as image:
            image.draft("RGB", (fit[1], fit[0]))  # JPEG: decode at a reduced scale; a no-op otherwise
            frame = rgb_frame(ImageOps.exif_transpose(image))
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow fails on odd files in many ways; each means "unreadable"
        raise DecodeError(f"unreadable image: {str(error).strip() or type(error).__name__}") from None
    return cover_crop(frame, shrink_size(*frame.shape[:2], fit))[None]


def rgb_frame(image: Image.Image) -> np.ndarray:
    """uint8 RGB (H, W, 3) of a Pillow image of any mode.

    Pillow's own RGB conversion clips 16-bit greyscale (modes ``I;16*``, ``I``) at 255, which turns a
    photograph almost white; those are scaled by 255/65535 here, floats (mode ``F``) by 255 when they
    lie in [0, 1]. Other values ranges cannot be mapped without guessing: DecodeError.
    """
    if image.mode.startswith("I"):
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DecodeError(f"{image.mode} image with values outside 0..65535")
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
    elif image.mode == "F":
        values = np.asarray(image)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise DecodeError("floating-point image with values outside [0, 1]")
        grey = np.round(values * 255).astype(np.uint8)
    else:
        return np.asarray(image.convert("RGB"))
    return np.repeat(grey[:, :, None], 3, axis=2)


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


def _rgb_frames(container: av.container.InputContainer, fps: float, fit: HW) -> Iterator[np.ndarray]:
    """The frames (h, w, 3) of an open video resampled to ``fps``, each shrunk to cover ``fit`` (a repeat is converted once)."""
    if not container.streams.video:
        raise DecodeError("no video stream")
    previous, rgb = None, None
    for frame in _resampled(container, fps):
        if frame is not previous:
            height, width = shrink_size(frame.height, frame.width, fit)
            rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
            previous = frame
        yield rgb


def video_frames(path: Path, fps: float, fit: HW) -> Iterator[np.ndarray]:
    """Every frame (h, w, 3) of a video resampled to ``fps`` and shrunk to cover ``fit``, decoded as they are taken.

    For videos too long to hold: memory stays that of a frame. Raises DecodeError when decoding fails,
    also part-way (the frames before were already yielded).
    """
    try:
        with av.open(str(path)) as container:
            yield from _rgb_frames(container, fps, fit)
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - as in read_video_clips
        raise DecodeError(f"undecodable video: {str(error).strip() or type(error).__name__}") from None


def read_video_clips(path: Path, sampling: ClipSampling, fit: HW, max_clips: int | None = None) -> list[np.ndarray]:
    """Clips (T, h, w, 3) of a video resampled to ``sampling.fps``; frames are shrunk to cover ``fit``.

    Decoding stops once ``max_clips`` clips are cut, so long videos cost only what is used. A video
    damaged part-way raises PartialDecodeError carrying the clips decoded before the damage.
    """
    clips: list[np.ndarray] = []
    window: deque[np.ndarray] = deque(maxlen=sampling.frames)
    resampled = 0
    try:
        with av.open(str(path)) as container:
            for rgb in _rgb_frames(container, sampling.fps, fit):
                window.append(rgb)
                resampled += 1
                start = resampled - sampling.frames
                if start >= 0 and start % sampling.stride == 0:
                    clips.append(np.stack(window))
                    if max_clips is not None and len(clips) >= max_clips:
                        return clips
    except DecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - FFmpeg and PyAV fail on damaged files in many ways
        reason = str(error).strip() or type(error).__name__
        if clips:
            raise PartialDecodeError(f"damaged after {resampled} frames ({len(clips)} clips kept): {reason}", clips) from None
        raise DecodeError(f"undecodable video: {reason}") from None
    if not clips:
        raise ShortVideoError(
            f"shorter than one clip: {resampled} frames at {sampling.fps:g} fps, a clip needs {sampling.frames}"
        )
    return clips
