"""How close the paper-scale tokenizer runs to this CPU's fp32 matmul peak, and where the rest of the time goes.

    python benchmarks/peak.py [--frames 17] [--side 256] [--repeats 3] [--compile] [--out F]

Cases, fp32 on CPU with the paper configuration of ``benchmarks/tokenizer.py`` (51 M parameters):
encode+decode of one ``--frames``×side² clip and of one side² image (no_grad), and one training
step (forward, L1 on the reconstruction plus the bottleneck's loss terms, backward) of one side² image.
FLOPs from ``measure.count_flops`` (attention counted, causal pairs only); the peak is the better of
two measurements (before and after the cases, same threads) of ``tokenizer.matmul_peak``: the best
fp32 square matmul of 1,024², 2,048² and 4,096² on either CPU kernel (torch's ``@``, and oneDNN through
``omnipipe.nn.linear``, which the model's linear layers use). On a shared machine that best is caught in a
burst of speed the multi-second cases rarely see, so each case is also timed interleaved with a 4,096²
product on both kernels ("% alongside": the case's FLOP rate over the faster kernel's, medians of
``--repeats`` rounds under the same load). With
``--compile`` each case also runs through ``torch.compile`` (inductor; the inference cases with ``freezing``,
which folds the weights in as prepacked constants), timed in the same interleaved rounds, its outputs
compared with eager (the clip's may differ where float rounding flips a VQ code).
The profile groups each case's self CPU time per operator: matmul (mm, addmm, bmm, oneDNN's linear), attention (the
SDPA kernels), conv, and the rest, whose largest operators are listed: what keeps the share below peak.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from measure import best_time, count_flops, interleaved_medians, write_result
from tokenizer import CONFIGS, build, matmul_peak, square_products
from torch import nn
from torch.profiler import ProfilerActivity, profile

from omnipipe.nn.components import register
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry

SQUARE = 4096  # side of the square product timed alongside each case
GROUPS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "conv": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_slow_conv2d_forward", "aten::slow_conv3d_forward"),
}


class Reconstruction(nn.Module):
    """Encode, quantize and decode a fixed input: a module, so that ``torch.compile`` with ``freezing`` can fold its weights in."""

    def __init__(self, model: Tokenizer, x: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("x", x, persistent=False)

    def forward(self) -> torch.Tensor:
        return self.model.decode(self.model.quantize(self.model.encode(self.x)).z_q)


@dataclass(frozen=True)
class NoGrad:
    """Calls ``module()`` without autograd (outside it, so that a compiled module is traced as an inference graph)."""

    module: Callable[[], torch.Tensor]

    def __call__(self) -> torch.Tensor:
        with torch.no_grad():  # not inference_mode: torch.compile cannot trace its inference tensors
            return self.module()


def cases(model: Tokenizer, frames: int, side: int) -> dict[str, Callable[[], torch.Tensor]]:
    """The measured calls, each returning a tensor to compare (eager vs compiled)."""
    clip = torch.rand(1, 3, frames, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    image = clip[:, :, :1].clone()

    def train_step() -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        out = model(image)
        loss = (out.reconstruction - image).abs().mean() + sum(out.quantizer.losses.values())
        loss.backward()
        return loss.detach()

    return {f"encode+decode 1×{frames}×{side}²": NoGrad(Reconstruction(model, clip)),
            f"encode+decode 1×1×{side}²": NoGrad(Reconstruction(model, image)), f"train step 1×1×{side}²": train_step}  # fmt: skip


def compiled_case(run: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``run`` through inductor: an inference module with its weights frozen in, the training step as it is."""
    if isinstance(run, NoGrad):
        with torch._inductor.config.patch(freezing=True):  # read when the first call compiles
            compiled = NoGrad(torch.compile(run.module))
            compiled()
        return compiled
    return torch.compile(run)


def case_pairs(frames: int, variant: Callable[[], AbstractContextManager[Any]]) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """(inside ``variant()``, as is) for each of ``cases``' calls on one paper-scale model, to time interleaved."""
    registry = Registry()
    register(registry)
    model = build(CONFIGS["paper"], registry, torch.device("cpu"))
    pairs = {}
    for name, run in cases(model, frames, 256).items():
        training = name.startswith("train")

        def varied(run: Callable[[], Any] = run, training: bool = training) -> Any:
            model.train(training)
            with variant():
                return run()

        def default(run: Callable[[], Any] = run, training: bool = training) -> Any:
            model.train(training)
            return run()

        pairs[name] = (varied, default)
    return pairs


def breakdown(fn: Callable[[], Any]) -> dict[str, Any]:
    """Self CPU time of one call per group, and the largest operators outside the groups."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    groups: dict[str, float] = defaultdict(float)
    others: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        group = next((name for name, ops in GROUPS.items() if event.key in ops), "other")
        groups[group] += event.self_cpu_time_total / 1e6
        if group == "other":
            others[event.key] += event.self_cpu_time_total / 1e6
    total = sum(groups.values())
    top = sorted(others.items(), key=lambda item: -item[1])[:8]
    return {"shares": {name: seconds / total for name, seconds in groups.items()}, "profiled_s": total,
            "top_other": [{"op": op, "share": seconds / total} for op, seconds in top]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (inductor)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peak.json"))
    args = parser.parse_args()
    registry = Registry()
    register(registry)
    cpu = torch.device("cpu")
    before = matmul_peak(cpu, torch.float32)
    model = build(CONFIGS["paper"], registry, cpu)
    square = square_products(SQUARE, cpu, torch.float32)
    rows = []
    for name, run in cases(model, args.frames, args.side).items():
        model.train(name.startswith("train"))
        flops = count_flops(run)
        row = {"case": name, "flops": flops, "eager_s": best_time(run, cpu, args.repeats), **breakdown(run)}
        timed = {"case": run, **square}
        if args.compile:
            compiled = compiled_case(run)
            row["compiled_max_abs_diff"] = float((compiled() - run()).abs().max())
            timed["compiled"] = compiled
        medians = interleaved_medians(timed, cpu, args.repeats)
        row["alongside_matmul_flop_per_s"] = 2 * SQUARE**3 / min(medians[kernel] for kernel in square)
        row["alongside_share"] = flops / medians["case"] / row["alongside_matmul_flop_per_s"]
        if args.compile:
            row["compiled_s"] = medians["compiled"]
            row["compiled_speedup"] = medians["case"] / medians["compiled"]
            row["compiled_alongside_share"] = flops / medians["compiled"] / row["alongside_matmul_flop_per_s"]
        rows.append(row)
        print(f"measured {name}", flush=True)
    peak = max(before, matmul_peak(cpu, torch.float32))
    print(f"paper config, fp32, {torch.get_num_threads()} threads; matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'case':<26} {'GFLOP':>7} {'eager s':>8} {'% peak':>7} {'% alongside':>11}" + (f" {'compiled s':>10} {'speed-up':>8} {'% alongside':>11}" if args.compile else "")
          + f"  {'matmul':>6} {'attn':>5} {'conv':>5} {'other':>6}")  # fmt: skip
    for row in rows:
        row["eager_peak_share"] = row["flops"] / row["eager_s"] / peak
        line = f"{row['case']:<26} {row['flops'] / 1e9:>7.1f} {row['eager_s']:>8.2f} {100 * row['eager_peak_share']:>6.0f}% {100 * row['alongside_share']:>10.0f}%"
        if args.compile:
            line += f" {row['compiled_s']:>10.2f} {row['compiled_speedup']:>7.2f}× {100 * row['compiled_alongside_share']:>10.0f}%"
        shares = row["shares"]
        print(line + "  " + " ".join(f"{100 * shares.get(g, 0.0):>5.0f}%" for g in ("matmul", "attention", "conv", "other")))
        print("    largest other ops: " + ", ".join(f"{o['op'].removeprefix('aten::')} {100 * o['share']:.1f}%" for o in row["top_other"][:6]))
    write_result(args.out, {"matmul_peak_flop_per_s": peak, "rows": rows})


if __name__ == "__main__":
    main()
