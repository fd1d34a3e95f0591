"""Which media are too small or too elongated to prepare: the rule, stated once.

Frames are resized to cover each stored resolution and cropped at the centre. A file is skipped (and
reported) when that needs an upscale by more than ``max_upscale`` (a 1×1 image would become a flat
fill) or when its longer side exceeds ``max_aspect_ratio`` times its shorter side (a 40000×1 strip
would be cropped to almost nothing of it).
"""
from __future__ import annotations

from omnipipe.data.decode import HW


def extent_problem(height: int, width: int, fit: HW, max_upscale: float, max_aspect_ratio: float) -> str | None:
    """Why a ``height × width`` frame is not prepared for resolutions covered by ``fit``, or None."""
    aspect = max(height, width) / min(height, width)
    if aspect > max_aspect_ratio:
        return f"{height}×{width} pixels: aspect ratio {aspect:.4g}:1 exceeds data.max_aspect_ratio {max_aspect_ratio:g}"
    upscale = max(fit[0] / height, fit[1] / width)
    if upscale > max_upscale:
        return (
            f"{height}×{width} pixels: covering {fit[0]}×{fit[1]} needs a {upscale:.3g}× upscale, "
            f"more than data.max_upscale {max_upscale:g}"
        )
    return None
