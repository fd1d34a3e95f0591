"""FSDP2 for the generic loop: shard a task's model with ``fully_shard``, and get whole copies back out.

``fully_shard`` replaces every parameter by a DTensor holding this rank's slice; the optimizer the task
built beforehand is pointed at the new parameters (it has no state yet). What needs the whole model —
evaluation, the stage's output — gets a plain copy made from a skeleton (the module with its
parameters on the meta device, real buffers) and the gathered weights.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from omnipipe.errors import OmnipipeError


class ShardingError(OmnipipeError):
    """A task that FSDP cannot shard as asked."""


def skeleton_of(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters are on the meta device (no memory) and whose buffers are real copies."""
    memo: dict[int, object] = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad) for p in model.parameters()}
    memo.update({id(b): b.detach().clone() for b in model.buffers()})
    return copy.deepcopy(model, memo)


def module_with(skeleton: nn.Module, tensors: dict[str, torch.Tensor], requires_grad: bool = False) -> nn.Module:
    """A copy of ``skeleton`` whose parameters and persistent buffers are ``tensors`` (by state-dict name, all of them)."""
    module = copy.deepcopy(skeleton)
    missing = [name for name in module.state_dict(keep_vars=True) if name not in tensors]
    if missing:
        raise ShardingError(f"no weights for {', '.join(missing[:3])}")
    for owner_name, owner in module.named_modules():
        prefix = f"{owner_name}." if owner_name else ""
        for name in list(owner._parameters):
            if owner._parameters[name] is not None:
                owner._parameters[name] = nn.Parameter(tensors[prefix + name], requires_grad)
        for name in list(owner._buffers):
            if prefix + name in tensors:
                owner._buffers[name] = tensors[prefix + name]
    return module


def gathered(module: nn.Module, keep: bool) -> dict[str, torch.Tensor] | None:
    """``module``'s state with every sharded tensor made whole (a collective: every rank calls it); None unless ``keep``."""
    whole = {name: value.full_tensor() if isinstance(value, DTensor) else value for name, value in module.state_dict().items()}
    return {name: value.detach().clone() for name, value in whole.items()} if keep else None


def shard(model: nn.Module, units: Iterable[nn.Module], optimizer: torch.optim.Optimizer) -> None:
    """``fully_shard`` each of ``units`` (e.g. transformer blocks), then ``model``; rank 0's weights first go to all.

    The optimizer must update ``model``'s parameters only, and not have stepped yet.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    strangers = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in names]
    if strangers or optimizer.state:
        raise ShardingError("fsdp: the task's optimizer must update only its model and not have stepped yet")
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)  # like DDP: every rank starts from rank 0's weights and buffers
    for unit in units:
        fully_shard(unit)
    fully_shard(model)
    sharded = dict(model.named_parameters())
    for group in optimizer.param_groups:
        group["params"] = [sharded[names[id(p)]] for p in group["params"]]
