"""The PatchGAN stack shared by the 2-D and 3-D discriminators: strided convs → per-patch logits."""
from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

Norm = Literal["batch", "group", "instance", "none"]


class PatchGANParams(BaseModel):
    """Width, depth and normalisation of a PatchGAN."""

    model_config = ConfigDict(extra="forbid")

    in_channels: int = Field(default=3, gt=0)
    channels: int = Field(default=64, gt=0, description="width of the first conv; doubles with each layer")
    layers: int = Field(default=3, gt=0, description="number of stride-2 convs (each halves H and W)")
    max_channel_mult: int = Field(default=8, gt=0, description="widths stop growing at channels × this")
    norm: Norm = Field(default="group", description="group/instance/none keep real and fake samples independent")


def norm_layer(norm: Norm, channels: int, dims: int) -> nn.Module:
    """The normalisation after a conv of ``dims`` spatial dimensions (2 or 3)."""
    if norm == "none":
        return nn.Identity()
    if norm == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if norm == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[dims - 2](channels)
    return (nn.InstanceNorm2d, nn.InstanceNorm3d)[dims - 2](channels, affine=True)


_NORMS = (nn.GroupNorm, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def init_weights(module: nn.Module) -> None:
    """PatchGAN init (pix2pix/VQGAN): conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d | nn.Conv3d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _NORMS):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class PatchGAN(nn.Module):
    """``layers`` stride-2 blocks, one stride-1 block, then a 1-channel conv: one logit per patch.

    Each block is conv → norm (not on the first) → LeakyReLU(0.2); block outputs are the
    features returned for feature matching.
    """

    def __init__(
        self,
        params: PatchGANParams,
        dims: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...],
        padding: int | tuple[int, ...],
    ) -> None:
        super().__init__()
        self.params = params
        conv = (nn.Conv2d, nn.Conv3d)[dims - 2]
        blocks = []
        in_channels = params.in_channels
        for index in range(params.layers + 1):
            width = params.channels * min(2**index, params.max_channel_mult)
            norm = nn.Identity() if index == 0 else norm_layer(params.norm, width, dims)
            block_stride = stride if index < params.layers else 1
            has_bias = isinstance(norm, nn.Identity)
            blocks.append(
                nn.Sequential(
                    conv(in_channels, width, kernel_size, block_stride, padding, bias=has_bias),
                    norm,
                    nn.LeakyReLU(0.2),
                )
            )
            in_channels = width
        self.blocks = nn.ModuleList(blocks)
        self.head = conv(in_channels, 1, kernel_size, 1, padding)
        self.apply(init_weights)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and every block's output, in the network's own layout."""
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features
