"""oneDNN vs torch's default BLAS (MKL sgemm) for fp32 linear layers on CPU, alone and in the paper-scale tokenizer.

    python benchmarks/linear.py [--rounds 5] [--frames 17] [--out F]

Layers: the paper configuration's products (width 512, GEGLU hidden 1,365, 8×8 patches) for one 256²
image (1,024 tokens) and one 17-frame clip (5 latent frames, 5,120 tokens), forward and the input's
gradient, plus a square 4,096² product (where the peak is measured). Whole model: ``peak.py``'s cases (encode+decode of
an image and a clip, a training step) with ``omnipipe.nn.linear`` on (its default) and off (every
product through ``F.linear``). Each pair runs interleaved, ``--rounds`` times; the table gives median
times and their ratio (torch / oneDNN: above 1, oneDNN is faster), so load drifts on a shared machine
hit both sides alike.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
from measure import interleaved_medians, write_result
from peak import case_pairs
from tokenizer import square_products

import omnipipe.nn.linear as onednn

# (name, input features, output features) of the paper configuration's linear layers
LAYERS = [("qkv", 512, 1536), ("attention out", 512, 512), ("GEGLU in", 512, 2730), ("GEGLU out", 1365, 512),
          ("patch embed", 192, 512), ("patch head", 512, 192)]  # fmt: skip


def layer_pairs(tokens: int) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], int]]:
    """(torch, oneDNN, multiply-adds) per layer product at ``tokens`` rows, forward and input gradient."""
    generator = torch.Generator().manual_seed(0)
    pairs = {}
    for name, fan_in, fan_out in LAYERS:
        x = torch.randn(tokens, fan_in, generator=generator)
        weight, bias = torch.randn(fan_out, fan_in, generator=generator), torch.randn(fan_out, generator=generator)
        grad = torch.randn(tokens, fan_out, generator=generator)
        macs = tokens * fan_in * fan_out
        pairs[f"{name} {tokens}×{fan_in}→{fan_out}"] = (
            lambda x=x, w=weight, b=bias: F.linear(x, w, b), lambda x=x, w=weight, b=bias: onednn.linear(x, w, b), macs)
        pairs[f"{name} input grad {tokens}×{fan_out}→{fan_in}"] = (
            lambda g=grad, w=weight: g @ w, lambda g=grad, w=weight: onednn.linear(g, w.t()), macs)
    return pairs


def square_pair(side: int) -> dict[str, tuple[Callable[[], Any], Callable[[], Any], int]]:
    """The two kernels on one square product, as ``tokenizer.matmul_peak`` measures them."""
    products = square_products(side, torch.device("cpu"), torch.float32)
    return {f"square {side}²": (products["torch"], products["onednn"], side**3)}


def onednn_off() -> AbstractContextManager[object]:
    """Every product through ``F.linear``: no product reaches ``ONEDNN_MIN_MACS``."""
    return mock.patch.object(onednn, "ONEDNN_MIN_MACS", math.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/linear.json"))
    args = parser.parse_args()
    if not onednn.onednn_available():
        raise SystemExit("benchmarks/linear.py: this torch build has no oneDNN linear kernel")
    cpu = torch.device("cpu")
    rows = []
    print(f"{'case':<36} {'torch ms':>10} {'oneDNN ms':>10}  {'ratio':>6}  GFLOP/s torch, oneDNN")
    layers = {**layer_pairs(1024), **layer_pairs(5 * 1024), **square_pair(4096)}
    groups = {"layer": layers, "model": {name: (*pair, 0) for name, pair in case_pairs(args.frames, onednn_off).items()}}
    for group, pairs in groups.items():
        for name, (torch_fn, onednn_fn, macs) in pairs.items():
            medians = interleaved_medians({"torch": torch_fn, "onednn": onednn_fn}, cpu, args.rounds)
            row = {"group": group, "case": name, "torch_s": medians["torch"], "onednn_s": medians["onednn"],
                   "speedup": medians["torch"] / medians["onednn"]}  # fmt: skip
            if macs:
                row |= {"torch_gflop_per_s": 2 * macs / medians["torch"] / 1e9, "onednn_gflop_per_s": 2 * macs / medians["onednn"] / 1e9}
            rows.append(row)
            rates = f"  {row['torch_gflop_per_s']:>6.0f} {row['onednn_gflop_per_s']:>6.0f}" if macs else ""
            print(f"{name:<36} {row['torch_s'] * 1e3:>10.2f} {row['onednn_s'] * 1e3:>10.2f}  {row['speedup']:>5.2f}×{rates}", flush=True)
    write_result(args.out, {"rounds": args.rounds, "threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
