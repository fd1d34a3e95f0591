"""Sharded checkpoints (FSDP2): every rank writes its slices with Distributed Checkpoint, in one step folder.

The folder is that of ``CheckpointStore`` (checksummed, published by one rename) with the sharded
tensors under ``sharded/`` (DCP's files: one per rank and the global metadata). DCP reshards on
load, so a checkpoint written by N ranks resumes on any number of ranks, one process included.
"""
from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_model

from omnipipe.train.checkpoint import CheckpointError, CheckpointStore
from omnipipe.train.distributed import DistContext

SHARDED_DIR = "sharded"


def save_sharded(
    store: CheckpointStore,
    step: int,
    tensors: dict[str, Any],
    replicated: dict[str, torch.nn.Module],
    state: dict[str, Any],
    ctx: DistContext,
) -> None:
    """Every rank writes its part of ``tensors`` (state dicts holding DTensors); rank 0 writes the ``replicated``
    modules (safetensors) and the trainer ``state``, then publishes the folder. A collective call."""
    tmp = [store.begin(step) if ctx.is_main else None]
    if ctx.world_size > 1:
        dist.broadcast_object_list(tmp, src=0)
    try:
        with _one_process_is_intended():
            dcp.save(tensors, checkpoint_id=tmp[0] / SHARDED_DIR)  # raises on every rank when one fails
    except (OSError, RuntimeError) as error:
        if ctx.is_main:
            shutil.rmtree(tmp[0], ignore_errors=True)
        raise CheckpointError(f"{store.root}: cannot write a checkpoint ({error}); {store.storage_advice()}") from None
    problem = [None]
    if ctx.is_main:
        try:
            for name, module in replicated.items():
                save_model(module, str(tmp[0] / f"{name}.safetensors"))
            store.publish(tmp[0], step, state)
        except (OSError, RuntimeError, CheckpointError) as error:
            shutil.rmtree(tmp[0], ignore_errors=True)
            problem = [error if isinstance(error, CheckpointError) else store.write_error(error)]
    if ctx.world_size > 1:
        dist.broadcast_object_list(problem, src=0)  # every rank stops when rank 0 could not publish
    if problem[0] is not None:
        raise CheckpointError(str(problem[0]))


def load_sharded(path: Path, tensors: dict[str, Any]) -> None:
    """Fill ``tensors`` (state dicts shaped like the ones saved, DTensors or plain) in place from ``path``."""
    try:
        with _one_process_is_intended():
            dcp.load(tensors, checkpoint_id=path / SHARDED_DIR)
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot load the sharded checkpoint ({str(error).splitlines()[0]})") from None


@contextmanager
def _one_process_is_intended() -> Iterator[None]:
    """Without a process group DCP warns that it assumes one process: here that is the intent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield
