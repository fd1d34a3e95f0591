"""VTok's key frame must be the OmniTokenizer's encoding of frame 0 alone: the tokenizer must be temporal-causal."""
from __future__ import annotations

import torch

from omnipipe.errors import OmnipipeError
from omnipipe.nn.tokenizer import Tokenizer


class NotCausalError(OmnipipeError):
    """A tokenizer whose first latent frame depends on later frames."""


@torch.no_grad()
def check_temporal_causal(base: Tokenizer, name: str, frames: int, resolution: tuple[int, int]) -> float:
    """Raise NotCausalError unless frame 0's latents are the same with and without the later frames of a random
    clip of ``frames`` frames; returns the largest difference found (0 for a causal tokenizer)."""
    was_training = base.training
    base.eval()
    weight = next(base.parameters())
    clip = torch.rand((1, base.spec.in_channels, frames, *resolution), generator=torch.Generator().manual_seed(0))
    clip = (clip * 2 - 1).to(device=weight.device, dtype=weight.dtype)
    with_later = base.encode(clip)[:, :1]
    alone = base.encode(clip[:, :, :1])
    base.train(was_training)
    difference = float((with_later - alone).abs().max())
    if difference > 1e-4 * max(1.0, float(alone.abs().max())):
        raise NotCausalError(
            f"tokenizer stage '{name}' is not temporal-causal: frame 0's latents change by up to {difference:.3g} "
            "when later frames follow, so its first latent frame is not a key frame's tokens (VTok needs causal "
            "temporal attention and a first frame patched alone)"
        )
    return difference
