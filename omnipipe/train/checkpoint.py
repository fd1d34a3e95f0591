"""Checkpoints: one folder per step, published by an atomic rename, the last N kept.

A folder ``step-000120/`` holds one safetensors file per module (model, ema, discriminators) and
``trainer.pt`` (optimizer, schedule, RNG streams, data position), read back with ``weights_only=True``.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from omnipipe.errors import OmnipipeError
from omnipipe.atomic import fsync_dir
from omnipipe.torch_files import TorchFileError, load_torch_file

_STEP_DIR = re.compile(r"^step-(\d{6,})$")
TRAINER_STATE = "trainer.pt"


class CheckpointError(OmnipipeError):
    """A checkpoint that cannot be read."""


class CheckpointStore:
    """The checkpoints of one training stage under ``root``."""

    def __init__(self, root: str | Path, keep_last: int) -> None:
        self.root = Path(root)
        self.keep_last = keep_last

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = (_STEP_DIR.match(child.name) for child in self.root.iterdir() if child.is_dir())
        return sorted(int(match.group(1)) for match in found if match)

    def path(self, step: int) -> Path:
        return self.root / f"step-{step:06d}"

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def clear(self) -> None:
        """Remove every checkpoint (a run that starts over)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def save(self, step: int, modules: dict[str, torch.nn.Module], state: dict[str, Any]) -> Path:
        """Write a complete checkpoint, then publish it with one rename; prune beyond ``keep_last``."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".partial-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a run killed while writing
        tmp = Path(tempfile.mkdtemp(prefix=f".partial-{step:06d}-", dir=self.root))
        for name, module in modules.items():
            save_model(module, str(tmp / f"{name}.safetensors"))
        torch.save({**state, "step": step}, tmp / TRAINER_STATE)
        for file in tmp.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(tmp)
        target = self.path(step)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(self.root)
        for old in self.steps()[: -self.keep_last]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return target

    @staticmethod
    def state(path: Path) -> dict[str, Any]:
        """The trainer state of the checkpoint at ``path``."""
        try:
            return load_torch_file(path / TRAINER_STATE, "trainer state")
        except TorchFileError as error:
            raise CheckpointError(f"{path}: cannot load checkpoint: {error}") from None

    @classmethod
    def load(cls, path: Path, modules: dict[str, torch.nn.Module]) -> dict[str, Any]:
        """Load the modules' weights in place and return the trainer state."""
        for name, module in modules.items():
            try:
                load_model(module, str(path / f"{name}.safetensors"), strict=True)
            except Exception as error:  # noqa: BLE001 - as above
                raise CheckpointError(f"{path}: cannot load checkpoint ({error})") from None
        return cls.state(path)
