"""TF1's ``resize_bilinear``: the resize that the reference FID (Inception) and FVD (I3D) code applies."""
from __future__ import annotations

import torch


def resize_bilinear_tf1(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TF1 ``tf.image.resize_bilinear`` (``align_corners=False``, ``half_pixel_centers=False``) of (N, C, H, W).

    Output pixel ``i`` samples source coordinate ``i · in/out`` (no half-pixel shift, no antialiasing),
    which is what the TF Inception graph of FID and the FVD reference code resize with;
    ``F.interpolate`` uses half-pixel centres.
    """

    def axis(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        source = torch.arange(size_out, dtype=torch.float64, device=images.device) * (size_in / size_out)
        low = source.floor().long().clamp(max=size_in - 1)
        high = (low + 1).clamp(max=size_in - 1)
        return low, high, (source - low).to(images.dtype)

    top, bottom, wy = axis(images.shape[2], height)
    left, right, wx = axis(images.shape[3], width)
    rows = images[:, :, top] * (1 - wy)[:, None] + images[:, :, bottom] * wy[:, None]  # (N, C, height, W)
    return rows[..., left] * (1 - wx) + rows[..., right] * wx
