"""``digits`` and ``moving_digits``: scikit-learn's 1,797 real handwritten 8×8 digits (10 classes), offline.

The digits come from the file scikit-learn's wheel ships (``sklearn/datasets/data/digits.csv.gz``,
what ``load_digits`` reads: 64 pixel values 0–16 then the digit), found through importlib. They
are drawn white on black, each digit pixel an n×n block (nearest-neighbour upscaling keeps the
data's own 8×8 structure). ``digits`` gives each digit as an image; ``moving_digits`` gives it as one
clip in which the digit glides along a straight line and bounces off the walls, on a trajectory
drawn from ``(seed, digit number)`` alone. The label of both is ``<label_prefix><digit>``.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field

from omnipipe.data.decode import HW
from omnipipe.data.embedded import package_data_dir
from omnipipe.data.errors import MissingSourceError
from omnipipe.data.media import ClipSampling, MediaItem, MediaKind
from omnipipe.data.source import MediaSource, SourceParams
from omnipipe.spec.base import PositiveInt

DIGITS_PACKAGE = ("sklearn", "datasets/data")
DIGITS_FILE = "digits.csv.gz"
DIGIT_LEVELS = 16  # pixel values run 0..16
DIGIT_SIDE = 8  # pixels per side of a digit


def digits_file() -> Path:
    return package_data_dir(*DIGITS_PACKAGE) / DIGITS_FILE


@functools.lru_cache(maxsize=2)
def load_digit_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Digit pictures (N, 8, 8) float in [0, 1] and their digits (N,) int64, in file order."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return (table[:, :-1] / DIGIT_LEVELS).reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def render_digit(picture: np.ndarray, side: int) -> np.ndarray:
    """An 8×8 digit in [0, 1] as a uint8 grey square (side, side): each digit pixel a block (nearest)."""
    grey = Image.fromarray(np.round(picture * 255).astype(np.uint8))
    return np.asarray(grey.resize((side, side), Image.Resampling.NEAREST))


def centred_square(fit: HW, multiple: int = 1) -> tuple[int, int, int]:
    """(top, left, side) of the largest square centred in a ``fit`` canvas whose side is a multiple of
    ``multiple``: square crops keep all of it."""
    side = max(multiple, min(fit) // multiple * multiple)
    return (fit[0] - side) // 2, (fit[1] - side) // 2, side


def bounce(start: float, velocity: float, steps: int, span: float) -> np.ndarray:
    """Positions in [0, span] after 0..steps-1 steps of ``velocity`` from ``start``, reflecting at both ends."""
    raw = start + velocity * np.arange(steps)
    if span <= 0:
        return np.zeros(steps)
    folded = np.mod(raw, 2 * span)
    return np.where(folded > span, 2 * span - folded, folded)


class DigitParams(SourceParams):
    max_digits: PositiveInt | None = Field(default=None, description="use only the first N digits of the file")
    label_prefix: str = Field(default="digit-", description="label = prefix + digit (classes shared by both sources)")


class _DigitSource(MediaSource):
    kind: MediaKind
    key_prefix: str

    def scan(self) -> list[MediaItem]:
        path = digits_file()
        if not path.is_file():
            raise MissingSourceError("type", str(path), f"scikit-learn's {DIGITS_FILE} (pip install scikit-learn)")
        _, digits = load_digit_table(path)
        count = len(digits) if self.params.max_digits is None else min(self.params.max_digits, len(digits))
        return [
            MediaItem(f"{self.key_prefix}/{number:04d}", path, self.kind, f"{self.params.label_prefix}{digits[number]}")
            for number in range(count)
        ]

    def picture(self, item: MediaItem) -> np.ndarray:
        pictures, _ = load_digit_table(item.path)
        return pictures[int(item.key.rsplit("/", 1)[1])]


class DigitImages(_DigitSource):
    """scikit-learn's handwritten digits as images: the digit, n×n pixels per digit pixel, centred in the frame."""

    kind, key_prefix = "image", "digits"

    class Params(DigitParams):
        pass

    def clips(self, item: MediaItem, sampling: ClipSampling, fit: HW) -> list[np.ndarray]:
        # The largest whole-block square: a centre crop of the stored frame (e.g. 32 of 36) shows all of it
        top, left, side = centred_square(fit, DIGIT_SIDE)
        canvas = np.zeros((1, *fit, 3), dtype=np.uint8)
        canvas[0, top : top + side, left : left + side] = render_digit(self.picture(item), side)[..., None]
        return [canvas]


class MovingDigits(_DigitSource):
    """scikit-learn's handwritten digits moving: one clip per digit, bouncing along a seeded straight line."""

    kind, key_prefix = "video", "moving-digits"

    class Params(DigitParams):
        digit_scale: float = Field(
            default=0.5, gt=0, le=1, description="digit side / side of the centred square (rounded to whole blocks)"
        )
        speed: float = Field(default=0.08, ge=0, description="distance per frame / side of the centred square")
        seed: int = Field(default=0, description="trajectories are drawn from (seed, digit number)")

    def trajectory(self, number: int, frames: int, span: float, side: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-left rows and columns (frames,) of the digit inside the square, from (seed, number) alone."""
        rng = np.random.default_rng([self.params.seed, number])
        start = rng.uniform(0, span, 2)
        angle = rng.uniform(0, 2 * math.pi)
        velocity = self.params.speed * side * np.array([math.sin(angle), math.cos(angle)])
        return bounce(start[0], velocity[0], frames, span), bounce(start[1], velocity[1], frames, span)

    def clips(self, item: MediaItem, sampling: ClipSampling, fit: HW) -> list[np.ndarray]:
        top, left, side = centred_square(fit)
        digit_side = max(DIGIT_SIDE, round(self.params.digit_scale * side / DIGIT_SIDE) * DIGIT_SIDE)
        digit = render_digit(self.picture(item), digit_side)
        rows, cols = self.trajectory(int(item.key.rsplit("/", 1)[1]), sampling.frames, side - digit_side, side)
        clip = np.zeros((sampling.frames, *fit, 3), dtype=np.uint8)
        for frame, (row, col) in enumerate(zip(np.round(rows).astype(int), np.round(cols).astype(int))):
            y, x = top + row, left + col
            clip[frame, y : y + digit_side, x : x + digit_side] = digit[..., None]
        return [clip]
