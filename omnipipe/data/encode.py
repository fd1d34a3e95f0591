"""Encode frames into a video file with PyAV, atomically."""
from __future__ import annotations

from pathlib import Path
from typing import IO

import av
import numpy as np

from omnipipe.atomic import atomic_write


def write_video(path: Path, video: np.ndarray, fps: int = 24, codec: str = "libx264") -> Path:
    """Encode uint8 (T, H, W, 3) frames (even H and W for libx264) into ``path`` (container from its suffix)."""

    def encode(file: IO[bytes]) -> None:
        with av.open(file, "w", format=path.suffix.lstrip(".") or "mp4") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.height, stream.width = video.shape[1:3]
            stream.pix_fmt = "yuv420p"
            for frame in video:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())

    atomic_write(path, encode)
    return path
