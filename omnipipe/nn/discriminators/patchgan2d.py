"""``patchgan2d``: a PatchGAN on single frames; a clip is judged frame by frame."""
from __future__ import annotations

import torch

from omnipipe.nn.frames import fold_frames, unfold_frames
from omnipipe.nn.discriminators.patchgan import PatchGAN, PatchGANParams


class PatchGAN2d(PatchGAN):
    """2-D PatchGAN (4×4 convs, stride 2) on images and on each frame of a clip."""

    Params = PatchGANParams

    def __init__(self, params: PatchGANParams) -> None:
        super().__init__(params, dims=2, kernel_size=4, stride=2, padding=1)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, T, H, W)`` → logits ``(B, 1, T, h, w)`` (and block features, same layout)."""
        batch = x.shape[0]
        logits, features = self.run(fold_frames(x))  # (B·T, 1, h, w)
        logits = unfold_frames(logits, batch)
        if not return_features:
            return logits
        return logits, [unfold_frames(feature, batch) for feature in features]
