"""Shared measuring helpers of the benchmarks: best-of-N wall time and peak memory (CPU or CUDA)."""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, sdpa_backward_flop_count

from omnipipe.nn.linear import onednn_available


def write_result(path: Path, result: dict[str, Any]) -> None:
    """``result`` after this machine's description (platform, threads, torch), as JSON at ``path``."""
    machine = {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine, **result}, indent=2))
    print(f"wrote {path}")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved_medians(fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time of each function, calling them in turn (one warm-up each), so load drifts hit all alike."""
    for fn in fns.values():
        fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: sorted(values)[len(values) // 2] for name, values in times.items()}


def _attended_pairs(query_length: int, key_length: int, is_causal: bool) -> int:
    """Query-key pairs SDPA computes: all, or those a causal mask (aligned to the top left) keeps."""
    if not is_causal:
        return query_length * key_length
    return sum(min(key_length, i + 1) for i in range(query_length))


def _cpu_flash_forward(query, key, value, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    """q·kᵀ and weights·v: 2 FLOPs per multiply-add, for the pairs actually attended."""
    batch, heads, query_length, head_dim = query
    pairs = _attended_pairs(query_length, key[-2], is_causal)
    return 2 * batch * heads * pairs * (head_dim + value[-1])


def _cpu_flash_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    """torch's own SDPA backward count (4 matmuls), scaled to the causally attended pairs."""
    is_causal = len(args) > 3 and bool(args[3])  # (out, logsumexp, dropout_p, is_causal, ...)
    dense = sdpa_backward_flop_count(grad_out, query, key, value)
    return dense * _attended_pairs(query[-2], key[-2], is_causal) // (query[-2] * key[-2])


def _conv_backward(grad_out, x, w, bias, stride, padding, dilation, transposed, output_padding, groups, output_mask,  # noqa: ANN001, PLR0913
                   out_shape=None, **kwargs) -> int:
    """Input and weight gradients each cost what the forward conv does (torch's formula ignores groups)."""
    forward = conv_flop_count(x, w, grad_out, transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _onednn_linear(x, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    """oneDNN's linear (``omnipipe.nn.linear``): 2 FLOPs per multiply-add, as torch counts ``addmm``.

    FlopCounterMode looks formulas up by the operator, not its overload: ``(x, weight, bias, attr, …)``,
    or for ``.binary`` (an elementwise epilogue with a second tensor, ``omnipipe.nn.gated_linear``)
    ``(x, other, weight, bias, attr)``; the epilogue is not counted, as torch counts no elementwise op.
    """
    weight = args[0] if isinstance(args[2], str) else args[1]
    return 2 * math.prod(x[:-1]) * weight[0] * weight[1]


FLOP_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_forward,  # torch has none: counted 0
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward,
    torch.ops.aten.convolution_backward: _conv_backward,  # torch's counts a depthwise conv ~dim times over
}
if onednn_available():
    FLOP_FORMULAS[torch.ops.mkldnn._linear_pointwise] = _onednn_linear  # torch has none: counted 0


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn``: FlopCounterMode with ``FLOP_FORMULAS`` (CPU attention counted, causal pairs only)."""
    with FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS) as counter:
        fn()
    return counter.get_total_flops()


class PeakMemory:
    """Peak memory (MiB) used by the block, above what was resident when it started."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.start = _resident_kib(reset=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        else:
            self.mib = (_peak_kib() - self.start) / 1024


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _resident_kib(reset: bool) -> int:
    """Current resident set (KiB), after returning freed heap to the OS and resetting the high-water mark."""
    libc = ctypes.util.find_library("c")
    if libc is not None and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)  # freed-but-resident pages would hide the next peak
    if reset:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # fall back to a ru_maxrss delta
    return _status_kib("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kib() -> int:
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
