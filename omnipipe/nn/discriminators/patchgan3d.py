"""``patchgan3d``: a PatchGAN of 3-D convs that judges space-time patches of a clip."""
from __future__ import annotations

import torch

from omnipipe.nn.frames import check_clip
from omnipipe.nn.discriminators.patchgan import PatchGAN, PatchGANParams


class PatchGAN3d(PatchGAN):
    """3-D PatchGAN (3×4×4 convs, stride 2 in T, H, W); any T ≥ 1 works, T = 1 included."""

    Params = PatchGANParams

    def __init__(self, params: PatchGANParams) -> None:
        super().__init__(params, dims=3, kernel_size=(3, 4, 4), stride=2, padding=1)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``(B, C, T, H, W)`` → logits ``(B, 1, t, h, w)`` (and block features)."""
        logits, features = self.run(check_clip(x))
        return (logits, features) if return_features else logits
