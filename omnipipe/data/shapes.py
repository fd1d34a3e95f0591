"""Procedural moving-shapes videos: volume for scale tests and benchmarks, written as real encoded files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from omnipipe.data.encode import write_video


def moving_shapes(frames: int, height: int, width: int, seed: int, shapes: int = 3) -> np.ndarray:
    """uint8 (T, H, W, 3): coloured discs and squares gliding over a gradient, bouncing off the borders."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1),
                           np.full_like(xs, int(rng.integers(256)))], -1).astype(np.uint8)  # fmt: skip
    radius = rng.uniform(0.08, 0.2, shapes) * min(height, width)
    position = rng.uniform(0, 1, (shapes, 2)) * (height, width)
    velocity = rng.uniform(-0.06, 0.06, (shapes, 2)) * (height, width)
    colour = rng.integers(0, 256, (shapes, 3), dtype=np.uint8)
    square = rng.random(shapes) < 0.5
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        frame = background.copy()
        for s in range(shapes):
            dy, dx = ys - position[s, 0], xs - position[s, 1]
            inside = np.maximum(abs(dy), abs(dx)) < radius[s] if square[s] else dy**2 + dx**2 < radius[s] ** 2
            frame[inside] = colour[s]
        video[t] = frame
        position += velocity
        bounced = (position < 0) | (position > (height, width))
        velocity[bounced] *= -1
    return video


def write_shapes_folder(root: Path, classes: int, per_class: int, frames: int, height: int, width: int) -> list[Path]:
    """A ``video_folder`` layout ``root/class_<c>/video_<i>.mp4`` of moving-shapes videos."""
    return [
        write_video(root / f"class_{c}" / f"video_{i}.mp4", moving_shapes(frames, height, width, seed=c * per_class + i))
        for c in range(classes)
        for i in range(per_class)
    ]
