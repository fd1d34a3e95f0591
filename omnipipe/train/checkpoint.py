"""Checkpoints: one folder per step, each file checksummed, published by an atomic rename, the last N kept.

A folder ``step-000120/`` holds one safetensors file per module (model, ema, discriminators),
``trainer.pt`` (optimizer, schedule, RNG streams, data position; read back with ``weights_only=True``)
and ``checksums.json`` (the SHA-256 of every other file), verified before anything is loaded.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from omnipipe.atomic import fsync_dir
from omnipipe.errors import OmnipipeError
from omnipipe.hashing import file_sha256
from omnipipe.torch_files import TorchFileError, load_torch_file

_STEP_DIR = re.compile(r"^step-(\d{6,})$")
TRAINER_STATE = "trainer.pt"
CHECKSUMS = "checksums.json"


class CheckpointError(OmnipipeError):
    """A checkpoint that cannot be read or written."""


class CheckpointStore:
    """The checkpoints of one training stage under ``root``."""

    def __init__(self, root: str | Path, keep_last: int) -> None:
        self.root = Path(root)
        self.keep_last = keep_last

    def steps(self) -> list[int]:
        """Steps of the published checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = (_STEP_DIR.match(child.name) for child in self.root.iterdir() if child.is_dir())
        return sorted(int(match.group(1)) for match in found if match)

    def path(self, step: int) -> Path:
        return self.root / f"step-{step:06d}"

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def newest_intact(self) -> tuple[Path | None, list[str]]:
        """The newest checkpoint whose files match their checksums, and one line per newer damaged one."""
        damaged: list[str] = []
        for step in reversed(self.steps()):
            try:
                self.verify(self.path(step))
            except CheckpointError as error:
                damaged.append(str(error))
                continue
            return self.path(step), damaged
        return None, damaged

    def clear(self) -> None:
        """Remove every checkpoint (a run that starts over)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def save(self, step: int, modules: dict[str, torch.nn.Module], state: dict[str, Any]) -> Path:
        """Write a complete checkpoint, then publish it with one rename; prune beyond ``keep_last``.

        A failed write (disk full, read-only folder) leaves no partial folder behind and raises one line.
        """
        tmp = self.begin(step)
        try:
            for name, module in modules.items():
                save_model(module, str(tmp / f"{name}.safetensors"))
        except (OSError, RuntimeError, SafetensorError) as error:  # torch and safetensors wrap I/O errors
            shutil.rmtree(tmp, ignore_errors=True)
            raise self.write_error(error) from None
        return self.publish(tmp, step, state)

    def begin(self, step: int) -> Path:
        """A fresh hidden folder to write the checkpoint of ``step`` into (then ``publish`` it)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob(".partial-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a run killed while writing
            return Path(tempfile.mkdtemp(prefix=f".partial-{step:06d}-", dir=self.root))
        except OSError as error:
            raise self.write_error(error) from None

    def publish(self, tmp: Path, step: int, state: dict[str, Any]) -> Path:
        """Add the trainer state and the checksums of every file (sub-folders too) to ``tmp``, flush it to disk,
        rename it to the step's folder and prune beyond ``keep_last``; on failure remove ``tmp`` and raise one line."""
        try:
            torch.save({**state, "step": step}, tmp / TRAINER_STATE)
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            checksums = {file.relative_to(tmp).as_posix(): file_sha256(file) for file in files}
            (tmp / CHECKSUMS).write_text(json.dumps(checksums, indent=1))
            for file in [*files, tmp / CHECKSUMS]:
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
            for folder in sorted({file.parent for file in files} | {tmp}, reverse=True):
                fsync_dir(folder)
            target = self.path(step)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
            fsync_dir(self.root)
        except (OSError, RuntimeError) as error:  # torch wraps I/O errors
            shutil.rmtree(tmp, ignore_errors=True)
            raise self.write_error(error) from None
        for old in self.steps()[: -self.keep_last]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return target

    def write_error(self, error: Exception) -> CheckpointError:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return CheckpointError(f"{self.root}: cannot write a checkpoint ({reason}); {self.storage_advice()}")

    def storage_advice(self) -> str:
        """What to do after a failed write, naming the checkpoint the next run continues from."""
        return (
            "free disk space or make the folder writable, then run again with --resume "
            f"(it continues from {self.latest() or 'the start'})"
        )

    @staticmethod
    def verify(path: Path) -> None:
        """Raise CheckpointError unless every file of the checkpoint matches its recorded checksum."""
        try:
            recorded = json.loads((path / CHECKSUMS).read_text())
        except (OSError, ValueError):
            raise CheckpointError(f"{path}: damaged checkpoint (no readable {CHECKSUMS})") from None
        for name, expected in recorded.items():
            try:
                actual = file_sha256(path / name)
            except OSError:
                raise CheckpointError(f"{path}: damaged checkpoint ({name} is missing)") from None
            if actual != expected:
                raise CheckpointError(f"{path}: damaged checkpoint ({name} does not match its checksum)")

    @classmethod
    def state(cls, path: Path, *, verified: bool = False) -> dict[str, Any]:
        """The trainer state of the checkpoint at ``path`` (verified first unless ``verified``)."""
        if not verified:
            cls.verify(path)
        try:
            return load_torch_file(path / TRAINER_STATE, "trainer state")
        except TorchFileError as error:
            raise CheckpointError(f"{path}: cannot load checkpoint: {error}") from None

    @classmethod
    def load(cls, path: Path, modules: dict[str, torch.nn.Module], *, verified: bool = False) -> dict[str, Any]:
        """Verify the checkpoint (unless ``verified``), load the modules' weights in place, return the trainer state."""
        state = cls.state(path, verified=verified)
        for name, module in modules.items():
            try:
                load_model(module, str(path / f"{name}.safetensors"), strict=True)
            except Exception as error:  # noqa: BLE001 - as above
                raise CheckpointError(f"{path}: cannot load checkpoint ({error})") from None
        return state
