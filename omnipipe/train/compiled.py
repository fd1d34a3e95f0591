"""``--compile``: a stage's forward and backward through ``torch.compile`` (inductor); the eager model stays the reference.

Compiling fuses the elementwise work around the products (layer norms, RoPE, GELU and their
gradients). On a 2-core CPU the paper-scale tokenizer's training steps ran 1.08–1.11× faster and the
tiny pipeline's 1.4× (``benchmarks/compile.py``), after a first call of 40–200 s per batch shape with
cold caches (inductor keeps its kernels on disk, so a later run compiles faster): it pays on long runs.
Random draws inside the compiled model (class dropout, diffusion noise) fall back to torch's eager
kernels, and the VQ's codebook update with its dead-code restarts runs eagerly, so a compiled run
draws the same numbers as an eager one and differs from it only by float rounding
(``tests/test_train_compile.py``). Evaluation, checkpoints and the written model use the
eager module, whose parameters the compiled one shares.
"""
from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from omnipipe.errors import OmnipipeError


def compiled_for_training(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` compiled by inductor with eager random draws; OmnipipeError when this CPU cannot build its kernels."""
    if device.type == "cpu":
        compilers = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
        if not any(shutil.which(name) for name in compilers):
            raise OmnipipeError(
                f"--compile on CPU builds C++ kernels, but no compiler ({' or '.join(compilers)}) is on PATH; "
                "install one or train without --compile"
            )
    return torch.compile(net, options={"fallback_random": True})
