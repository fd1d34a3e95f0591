"""Encode frames into a video file with PyAV, atomically."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO

import av
import numpy as np

from omnipipe.atomic import atomic_write


def write_video(path: Path, video: Iterable[np.ndarray], fps: int = 24, codec: str = "libx264") -> Path:
    """Encode uint8 (H, W, 3) frames — a (T, H, W, 3) array or any iterable, taken one at a time — (even H and W
    for libx264) into ``path`` (container from its suffix)."""

    def encode(file: IO[bytes]) -> None:
        with av.open(file, "w", format=path.suffix.lstrip(".") or "mp4") as container:
            stream = None
            for frame in video:
                if stream is None:
                    stream = container.add_stream(codec, rate=fps)
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt = "yuv420p"
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            if stream is not None:
                container.mux(stream.encode())

    atomic_write(path, encode)
    return path
