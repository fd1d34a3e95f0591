"""Seeded weights in the reference's state-dict layout, and Lightning-format checkpoints holding them.

The stream is NumPy's PCG64 (stable across platforms and NumPy versions), drawn tensor by tensor in
``reference_layout`` order, so a seed stands for a whole network at any width: tests and benchmarks
regenerate paper-width weights instead of storing them. Scales keep activations of order one.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnipipe.atomic import atomic_write
from omnipipe.nn.relative_position import relative_position_index
from omnipipe.reference.architecture import ReferenceArchitecture
from omnipipe.reference.layout import RefTensor, reference_layout


def _draw(entry: RefTensor, rng: np.random.Generator) -> np.ndarray:
    normal = rng.standard_normal(entry.shape, dtype=np.float32)
    if entry.role == "weight":
        return normal / np.float32(math.sqrt(math.prod(entry.shape[1:])))
    if entry.role == "bias":
        return normal * np.float32(0.02)
    if entry.role == "gain":
        return np.float32(1) + np.float32(0.1) * normal
    if entry.role == "shift":
        return normal * np.float32(0.1)
    if entry.role == "position_table":
        return normal * np.float32(0.5)
    if entry.role == "codes":
        return normal / np.float32(math.sqrt(entry.shape[1]))
    if entry.role == "counts":
        return np.abs(normal) + np.float32(1)
    if entry.role == "zero_beta":
        return np.zeros(entry.shape, dtype=np.float32)
    raise ValueError(f"no synthetic values for role {entry.role}")


def synthetic_reference_state_dict(arch: ReferenceArchitecture, seed: int) -> dict[str, torch.Tensor]:
    """The reference tokenizer's state dict for ``arch`` with seeded values (fp32; the index buffers exact)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    state: dict[str, torch.Tensor] = {}
    for entry in reference_layout(arch):
        if entry.role == "position_index":
            state[entry.key] = relative_position_index(arch.twod_window_size)
        else:
            state[entry.key] = torch.from_numpy(_draw(entry, rng))
    return state


def lightning_checkpoint(state: dict[str, torch.Tensor], args: dict[str, Any], global_step: int = 0) -> dict[str, Any]:
    """A checkpoint laid out as pytorch-lightning 1.5 writes the reference's ``VQGAN`` (flags as an argparse.Namespace)."""
    return {
        "epoch": 0,
        "global_step": global_step,
        "pytorch-lightning_version": "1.5.4",
        "state_dict": state,
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hparams_name": "args",
        "hyper_parameters": {"args": argparse.Namespace(**args)},
    }


def write_lightning_checkpoint(path: str | Path, content: dict[str, Any]) -> None:
    """``torch.save`` a checkpoint dict atomically."""
    atomic_write(Path(path), lambda file: torch.save(content, file))


def synthetic_pixels(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Seeded 8-bit noise pixels mapped to [-1, 1] (``k / 127.5 − 1``, exact in fp32), e.g. shape (B, C, T, H, W)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8)).float() / 127.5 - 1
