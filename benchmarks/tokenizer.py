"""Tokenizer benchmark: encode+decode throughput, achieved FLOP/s vs measured matmul peak, peak memory.

    python benchmarks/tokenizer.py [--quick] [--out results.json]

Cases: the tiny and the paper-scale (OmniTokenizer) configurations at several resolutions and frame
counts, fp32 and bf16 autocast, on CPU (and CUDA when available), under ``torch.inference_mode``.
Also: window vs full spatial attention at 256², and time per pixel as the pixel count grows.
FLOPs come from ``FlopCounterMode`` with formulas for the CPU flash-attention kernels registered in
``measure.py`` (torch has none, so attention used to count 0); causal attention counts the attended
pairs only. Peak memory on
CPU is the rise of the process's resident high-water mark (VmHWM, reset through
/proc/self/clear_refs; ru_maxrss delta where that is unavailable); on CUDA max_memory_allocated.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from measure import PeakMemory, best_time, count_flops

from omnipipe.nn.components import register
from omnipipe.nn.linear import linear
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.model import ModelSpec


def stack(width: int, heads: int, spatial: list[dict], temporal: int) -> dict[str, Any]:
    return {"width": width, "num_heads": heads, "spatial": spatial, "temporal": [{"type": "causal"}] * temporal,
            "mlp": "geglu", "mlp_ratio": 4.0}


FULL, WIN8, WIN4 = {"type": "full"}, {"type": "window", "window_size": 8}, {"type": "window", "window_size": 4}
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "patchifier": {"type": "omni", "patch_size": 4, "temporal_patch_size": 4},
        "encoder": stack(128, 4, [FULL, WIN4], 1),
        "quantizer": {"type": "vq", "codebook_size": 512, "code_dim": 8},
        "decoder": stack(128, 4, [WIN4, FULL], 1),
    },
    "paper": {
        "patchifier": {"type": "omni", "patch_size": 8, "temporal_patch_size": 4},
        "encoder": stack(512, 8, [FULL, FULL, WIN8, WIN8], 4),
        "quantizer": {"type": "vq", "codebook_size": 8192, "code_dim": 8},
        "decoder": stack(512, 8, [WIN8, WIN8, FULL, FULL], 4),
    },
}
# (config, batch, frames, height, width)
CASES = [
    ("tiny", 4, 1, 64, 64), ("tiny", 4, 17, 64, 64), ("tiny", 4, 1, 128, 128), ("tiny", 4, 9, 64, 96),
    ("paper", 1, 1, 256, 256), ("paper", 1, 17, 256, 256), ("paper", 1, 1, 256, 384), ("paper", 1, 9, 128, 128),
]
QUICK_CASES = [("tiny", 4, 1, 64, 64), ("tiny", 4, 17, 64, 64), ("paper", 1, 1, 256, 256), ("paper", 1, 17, 256, 256)]


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Measured FLOP/s of square matmuls in ``dtype``: the best of several sizes (on CPU 1,024–4,096;
    one size alone can read low, e.g. 2,048² at 60 GFLOP/s where 4,096² reaches 75) and of both CPU
    kernels, torch's ``@`` and ``omnipipe.nn.linear`` (oneDNN for fp32), so the peak is the machine's best."""
    best = 0.0
    for n in (1024, 2048, 4096) if device.type == "cpu" else (8192,):
        for product in square_products(n, device, dtype).values():
            best = max(best, 2 * n**3 / best_time(product, device, 5 if n < 4096 else 3))
    return best


def square_products(n: int, device: torch.device, dtype: torch.dtype) -> dict[str, Callable[[], torch.Tensor]]:
    """One n×n product on each kernel: ``torch`` (``@``) and ``onednn`` (``omnipipe.nn.linear``: oneDNN for fp32 on CPU)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return {"torch": lambda: a @ b, "onednn": lambda: linear(a, b)}


def build(config: dict[str, Any], registry: Registry, device: torch.device) -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer.from_spec(ModelSpec.model_validate(config), registry).to(device).eval()


def measure(model: Tokenizer, x: torch.Tensor, bf16: bool, repeats: int) -> dict[str, float]:
    """Encode+decode time, FLOPs and peak memory for one input."""
    device = x.device

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model.decode(model.quantize(model.encode(x)).z_q)

    seconds = best_time(run, device, repeats)
    flops = count_flops(run)
    with PeakMemory(device) as memory:
        run()
    b, _, t = x.shape[:3]
    return {"seconds": seconds, "frames_per_s": b * t / seconds, "flops": flops,
            "flop_per_s": flops / seconds, "peak_mib": memory.mib}


def spatial_variant(config: dict[str, Any], kind: dict[str, Any]) -> dict[str, Any]:
    """The config with every spatial block replaced by ``kind``."""
    variant = copy.deepcopy(config)
    for side in ("encoder", "decoder"):
        variant[side]["spatial"] = [kind] * len(variant[side]["spatial"])
    return variant


def run_device(device: torch.device, registry: Registry, quick: bool, results: dict[str, Any]) -> None:
    """Measure every case on ``device`` into ``results`` and print its tables."""
    repeats = 2 if quick else 3
    before = {key: matmul_peak(device, dtype) for key, dtype in DTYPES.items()}
    models = {name: build(config, registry, device) for name, config in CONFIGS.items()}
    rows = []
    for name, b, t, h, w in QUICK_CASES if quick else CASES:
        x = torch.rand(b, 3, t, h, w, device=device) * 2 - 1
        for precision in DTYPES:
            row = measure(models[name], x, precision == "bf16", repeats)
            row.update(device=device.type, config=name, batch=b, frames=t, height=h, width=w, dtype=precision)
            rows.append(row)
    variants = {kind: build(spatial_variant(CONFIGS["paper"], spec), registry, device)
                for kind, spec in (("full", FULL), ("window", WIN8))}
    attention, scaling = [], []
    for t in (1,) if quick else (1, 17):
        x = torch.rand(1, 3, t, 256, 256, device=device) * 2 - 1
        for kind, model in variants.items():
            row = measure(model, x, False, repeats)
            attention.append({**row, "device": device.type, "kind": kind, "frames": t, "height": 256, "width": 256})
    for side in (128, 256, 384) if quick else (128, 256, 384, 512):
        x = torch.rand(1, 3, 1, side, side, device=device) * 2 - 1
        for kind, model in variants.items():
            row = measure(model, x, False, repeats)
            scaling.append({**row, "device": device.type, "kind": kind, "height": side, "width": side,
                            "s_per_megapixel": row["seconds"] / (side * side / 1e6)})
    # the better of two peak measurements, so a busy machine during one of them does not inflate the shares
    peaks = {key: max(value, matmul_peak(device, DTYPES[key])) for key, value in before.items()}
    for row in rows:
        row["peak_share"] = row["flop_per_s"] / peaks[row["dtype"]]
    results["peaks"][device.type] = peaks
    results["cases"] += rows
    results["attention"] += attention
    results["scaling"] += scaling

    print(f"[{device.type}] matmul peak: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"{'config':<6} {'input B×T×H×W':<18} {'dtype':<5} {'s/iter':>8} {'frames/s':>9} {'GFLOP':>8} "
          f"{'GFLOP/s':>8} {'% peak':>6} {'peak MiB':>9}")
    for r in rows:
        shape = f"{r['batch']}×{r['frames']}×{r['height']}×{r['width']}"
        print(f"{r['config']:<6} {shape:<18} {r['dtype']:<5} {r['seconds']:>8.3f} {r['frames_per_s']:>9.1f} "
              f"{r['flops'] / 1e9:>8.1f} {r['flop_per_s'] / 1e9:>8.1f} {100 * r['peak_share']:>5.0f}% {r['peak_mib']:>9.0f}")
    print("window vs full spatial attention (paper width, every spatial block of one kind, fp32):")
    for r in attention:
        print(f"  {r['kind']:<6} 1×{r['frames']}×256×256: {r['seconds']:.3f} s, {r['flops'] / 1e9:.1f} GFLOP")
    print("cost per pixel as the image grows (same models, fp32 image), seconds per megapixel:")
    for r in scaling:
        print(f"  {r['height']}²  {r['kind']:<6} {r['s_per_megapixel']:6.2f} s/MP  ({r['flops'] / 1e9:.0f} GFLOP)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    registry = Registry()
    register(registry)
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "peaks": {}, "cases": [], "attention": [], "scaling": [],
    }
    for device in [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else []):
        run_device(device, registry, args.quick, results)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
