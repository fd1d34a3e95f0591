"""The registry's build-time check of a quantizer: a sane ``codebook_size`` and a working ``decode_codes``.

A probe runs the freshly built quantizer (unless it was built on the ``meta`` device) once in eval mode on a small latent grid (its RNG use kept out
of the global streams) and decodes what it returned: discrete codes must be integers in
``[0, codebook_size)`` of shape (B, T', H', W'), and ``decode_codes`` must give back a tensor shaped like
the input (B, T', H', W', D).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from omnipipe.nn.quantizer_output import QuantizerOutput

MAX_CODEBOOK_SIZE = 2**31  # codes are stored as int32 (token shards, ``omnipipe tokenize``)
PROBE_GRID = (1, 1, 2, 2)  # (B, T', H', W')


def check_quantizer(quantizer: Any, context: Mapping[str, Any]) -> str | None:
    """The first broken promise of the quantizer contract, as a phrase; None when it holds."""
    if not hasattr(quantizer, "codebook_size"):
        return "has no attribute codebook_size (an int, or None for a continuous bottleneck)"
    size = quantizer.codebook_size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= MAX_CODEBOOK_SIZE):
        return (
            f"codebook_size {size!r} must be an int from 2 to 2**31 (codes are stored as int32), "
            "or None for a continuous bottleneck"
        )
    if not callable(getattr(quantizer, "decode_codes", None)):
        return "has no method decode_codes(codes) -> z_q"
    dim = context.get("dim")
    if dim is None or not isinstance(quantizer, torch.nn.Module):
        return None
    return _probe(quantizer, size, dim)


def _probe(quantizer: torch.nn.Module, size: int | None, dim: int) -> str | None:
    parameter = next(quantizer.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    if device.type == "meta":  # a shapes-only build (e.g. counting parameters) has no values to probe
        return None
    z = torch.randn(*PROBE_GRID, dim, generator=torch.Generator().manual_seed(0)).to(device)  # (B, T', H', W', D)
    was_training = quantizer.training
    quantizer.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            try:
                out = quantizer(z)
            except Exception as error:  # noqa: BLE001 - any failure of a plugin's forward is reported as such
                return f"forward(z) fails on z of shape {tuple(z.shape)}: {type(error).__name__}: {error}"
            if not isinstance(out, QuantizerOutput):
                return f"forward(z) must return an omnipipe.QuantizerOutput, not {type(out).__name__}"
            problem = _tokens_problem(out, size, z)
            if problem is not None:
                return problem
            tokens = out.codes if size is not None else out.latents
            try:
                decoded = quantizer.decode_codes(tokens)
            except Exception as error:  # noqa: BLE001 - as above
                return f"decode_codes fails on the codes of forward(z): {type(error).__name__}: {error}"
    finally:
        quantizer.train(was_training)
    if not isinstance(decoded, torch.Tensor) or decoded.shape != z.shape:
        got = tuple(decoded.shape) if isinstance(decoded, torch.Tensor) else type(decoded).__name__
        return f"decode_codes must return a tensor of shape {tuple(z.shape)} (B, T', H', W', D), got {got}"
    return None


def _tokens_problem(out: QuantizerOutput, size: int | None, z: torch.Tensor) -> str | None:
    if size is None:
        if out.latents is None:
            return "a continuous quantizer (codebook_size None) must return its latents in QuantizerOutput.latents"
        return None
    codes = out.codes
    grid = tuple(z.shape[:-1])
    if codes is None:
        return f"codebook_size is {size} but forward(z) returned no codes (None is for continuous bottlenecks)"
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool or tuple(codes.shape) != grid:
        return f"forward(z) must return integer codes of shape {grid} (B, T', H', W'), got {codes.dtype} {tuple(codes.shape)}"
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= size):
        return f"forward(z) returned codes outside [0, codebook_size = {size}): {int(codes.min())}..{int(codes.max())}"
    return None
