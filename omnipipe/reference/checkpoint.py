"""Loading a reference Lightning ``.ckpt`` with ``torch.load(weights_only=True)`` and an explicit allow-list."""
from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omnipipe.errors import OmnipipeError


class ReferenceCheckpointError(OmnipipeError):
    """A reference checkpoint that cannot be read safely or lacks what the import needs."""


class LightningAttributeDict(dict):
    """Stand-in for ``pytorch_lightning.utilities.parsing.AttributeDict`` (a plain dict subclass) when unpickling."""


ALLOWED_GLOBALS: list[Any] = [
    argparse.Namespace,  # the reference saves its flags as hyper_parameters["args"]
    (LightningAttributeDict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (LightningAttributeDict, "lightning.pytorch.utilities.parsing.AttributeDict"),
    (LightningAttributeDict, "lightning_fabric.utilities.data.AttributeDict"),
]
"""What a reference checkpoint may pickle besides tensors and plain containers; nothing here runs code."""


@dataclass
class ReferenceCheckpoint:
    """The tokenizer-relevant content of a reference checkpoint."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    args: dict[str, Any]


def load_reference_checkpoint(path: str | Path) -> ReferenceCheckpoint:
    """Read ``state_dict`` and the hyper-parameters (``args``) of a reference ``.ckpt``, safely."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceCheckpointError(f"{path}: reference checkpoint not found")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ReferenceCheckpointError(f"{path}: {_unsafe_reason(path, error)}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ReferenceCheckpointError(f"{path}: not a readable torch checkpoint ({_first_line(error)})") from None
    if not isinstance(content, dict) or not isinstance(content.get("state_dict"), dict):
        raise ReferenceCheckpointError(f"{path}: no 'state_dict' in the checkpoint: not a Lightning checkpoint")
    state = content["state_dict"]
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ReferenceCheckpointError(f"{path}: state_dict entries that are not tensors: {', '.join(bad[:10])}")
    return ReferenceCheckpoint(path, state, _hyper_parameters(content, path))


def _hyper_parameters(content: dict[str, Any], path: Path) -> dict[str, Any]:
    hparams = content.get("hyper_parameters")
    if isinstance(hparams, dict) and "args" in hparams:
        hparams = hparams["args"]
    if isinstance(hparams, argparse.Namespace):
        return vars(hparams)
    if isinstance(hparams, dict):
        return dict(hparams)
    raise ReferenceCheckpointError(
        f"{path}: no hyper-parameters ('hyper_parameters' with the reference's 'args'): cannot tell its architecture"
    )


def _unsafe_reason(path: Path, error: pickle.UnpicklingError) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - only to improve the message; the load already failed
        names = []
    if names:
        return f"pickles objects outside the allow-list, not loaded: {', '.join(names)}"
    return f"cannot be unpickled safely ({_first_line(error)})"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
