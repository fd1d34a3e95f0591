"""Pictures and videos of reconstructions: PNG grids (target | tokenizer | baseline) and side-by-side mp4s."""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omnipipe.atomic import atomic_write
from omnipipe.data.encode import write_video


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """``(C, T, H, W)`` in [-1, 1] → uint8 ``(T, H, W, C)``."""
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()


def side_by_side(*versions: torch.Tensor, gap: int = 2) -> np.ndarray:
    """The same sample ``(C, T, H, W)`` in several versions, next to each other: uint8 ``(T, H, W', 3)``."""
    frames = [to_uint8(v) for v in versions]
    t, h, _, c = frames[0].shape
    spacer = np.full((t, h, gap, c), 255, dtype=np.uint8)
    parts = [part for frame in frames for part in (frame, spacer)][:-1]
    return np.concatenate(parts, axis=2)


def write_png(path: Path, picture: np.ndarray, scale: int) -> None:
    """Write a uint8 ``(H, W, 3)`` picture enlarged ``scale`` times (nearest), atomically."""
    image = Image.fromarray(picture).resize((picture.shape[1] * scale, picture.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


def grid_picture(rows: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Stack rows (H, W, 3) with white gaps (narrower rows padded white on the right): uint8 (H', W', 3)."""
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, gap), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return np.concatenate(padded, axis=0)


def write_grid(path: Path, rows: list[np.ndarray], scale: int = 4, gap: int = 2) -> None:
    """Stack rows (H, W, 3) with white gaps into one PNG."""
    write_png(path, grid_picture(rows, gap), scale)


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: int, scale: int = 4) -> None:
    """A side-by-side clip — uint8 frames (H, W, 3): a ``(T, H, W, 3)`` array or any iterable, encoded as they come —
    as mp4, enlarged ``scale`` times (even sides for H.264)."""

    def enlarged() -> Iterator[np.ndarray]:
        for frame in frames:
            big = frame.repeat(scale, axis=0).repeat(scale, axis=1)
            yield big[: big.shape[0] // 2 * 2, : big.shape[1] // 2 * 2]

    write_video(path, enlarged(), fps=fps)
