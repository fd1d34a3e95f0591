"""Distributed data parallel set-up from ``torchrun``'s environment (gloo on CPU, NCCL on GPU)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from omnipipe.errors import OmnipipeError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str | None = None) -> DistContext:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1); a single process otherwise.

    ``device_name``: ``cpu``, ``cuda`` (this rank's ``LOCAL_RANK`` GPU) or ``cuda:N``; None: CUDA when available.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return DistContext(rank=rank, world_size=world_size, device=device)


def pick_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The device a run uses; one clear error when it asks for CUDA on a machine without it."""
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OmnipipeError(f"--device {name}: not a device name (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OmnipipeError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise OmnipipeError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", index)
    elif device.type != "cpu":
        raise OmnipipeError(f"--device {name}: training runs on cpu or cuda")
    return device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (a no-op in a single process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_from_main(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``tensor`` on every rank, in place (a no-op in a single process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast(tensor, src=0)
    return tensor


def sync_codebook(quantizer: torch.nn.Module) -> None:
    """Make a quantizer with DDP hooks (``sync_fn``, ``broadcast_fn``; e.g. ``vq``) sum its statistics over ranks
    and share rank 0's dead-code restarts, so its codebook stays identical on every rank."""
    if hasattr(quantizer, "sync_fn"):
        quantizer.sync_fn = all_reduce_sum
        quantizer.broadcast_fn = broadcast_from_main
