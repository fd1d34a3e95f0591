"""Reading ``torch.save`` files safely: ``weights_only`` loading, and its refusals as one line naming the file."""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from omnipipe.errors import OmnipipeError


class TorchFileError(OmnipipeError):
    """A torch file that cannot be read safely."""


def load_torch_file(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; ``what`` names the file's role in errors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TorchFileError(f"{path}: {what} not found") from None
    except pickle.UnpicklingError as error:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if refused:
            raise TorchFileError(
                f"{path}: {what} refused by torch.load(weights_only=True): it holds {refused.group(1)}, not only "
                "tensors and plain containers; omnipipe never unpickles code — save the tensors alone (e.g. the state_dict)"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
        reason = detail.group(1).strip() if detail else _first_line(error)
        raise TorchFileError(f"{path}: {what} is not a readable torch file ({reason})") from None
    except Exception as error:  # noqa: BLE001 - a damaged or foreign file fails in many ways; all mean "unreadable"
        raise TorchFileError(f"{path}: {what} is not a readable torch file ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
