"""Metric networks on CPU: memory layout and heap reuse, the two settings of ``omnipipe.metrics``' FID/I3D builders.

    python benchmarks/heap.py [--rounds 3] [--out benchmarks/results/heap.json]

Each variant runs in its own process (glibc's heap thresholds cannot be undone inside one), the
variants in turn for ``--rounds`` rounds so that load drifts hit them alike; a process warms up once,
then times one batch. Variants: ``contiguous`` (NCHW, glibc's default heap), ``channels_last``
(the layout the builders use), ``channels_last + kept heap`` (also ``omnipipe.heap.keep_freed_memory``,
as the builders do). Inputs: 64 grey 32×32 images through the FID Inception (each resized to 299²)
and 8 RGB clips of 16×32×32 through I3D (resized to 224²) — the default pipeline's shapes. Reported:
median seconds per image / clip, the process's kernel time and minor page faults during the batch,
and the largest feature difference from the contiguous variant.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from measure import write_result

VARIANTS = ("contiguous", "channels_last", "channels_last + kept heap")


def child(variant: str) -> dict[str, object]:
    """Build both networks as ``variant`` says, time one batch each; returns the numbers and the features."""
    from omnipipe.heap import keep_freed_memory
    from omnipipe.metrics.i3d import build_i3d
    from omnipipe.metrics.inception import FIDInception
    from omnipipe.metrics.inception_weights import load_inception_state

    if variant.endswith("kept heap"):
        keep_freed_memory()
    inception = FIDInception()
    inception.load_state_dict(load_inception_state(None)[0])
    i3d = build_i3d(None, False)[0]
    if variant.startswith("channels_last"):
        inception = inception.to(memory_format=torch.channels_last)
        i3d = i3d.to(memory_format=torch.channels_last_3d)
    inception.eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 32, 32, generator=generator) * 2 - 1
    clips = torch.rand(8, 3, 16, 32, 32, generator=generator) * 2 - 1
    cases = {"inception": (lambda: torch.cat([inception(FIDInception.preprocess(c)) for c in images.split(32)]), 64),
             "i3d": (lambda: torch.cat([i3d.features(c) for c in clips.split(4)]), 8)}  # fmt: skip
    out: dict[str, object] = {}
    with torch.no_grad():
        for name, (run, count) in cases.items():
            run()
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            features = run()
            seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
            out[name] = {"seconds_each": seconds / count, "kernel_s": after.ru_stime - before.ru_stime,
                         "page_faults": after.ru_minflt - before.ru_minflt, "features": features.double().tolist()}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/heap.json"))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for round_index in range(args.rounds):
        for variant in VARIANTS:
            done = subprocess.run([sys.executable, __file__, "--child", variant], check=True, capture_output=True, text=True)
            runs[variant].append(json.loads(done.stdout.splitlines()[-1]))
        print(f"round {round_index + 1} of {args.rounds} done", flush=True)
    rows = []
    for variant, results in runs.items():
        for name in ("inception", "i3d"):
            reference = torch.tensor(runs["contiguous"][0][name]["features"])
            rows.append({"variant": variant, "network": name,
                         "seconds_each": statistics.median(r[name]["seconds_each"] for r in results),
                         "kernel_s": statistics.median(r[name]["kernel_s"] for r in results),
                         "page_faults": statistics.median(r[name]["page_faults"] for r in results),
                         "max_abs_diff": max(float((torch.tensor(r[name]["features"]) - reference).abs().max()) for r in results)})  # fmt: skip
    base = {row["network"]: row["seconds_each"] for row in rows if row["variant"] == "contiguous"}
    print(f"{torch.get_num_threads()} threads, median of {args.rounds} rounds (one process per variant and round)")
    print(f"{'variant':<28} {'network':<10} {'s each':>7} {'speed-up':>8} {'kernel s':>8} {'faults':>9} {'max diff':>9}")
    for row in rows:
        row["speedup"] = base[row["network"]] / row["seconds_each"]
        print(f"{row['variant']:<28} {row['network']:<10} {row['seconds_each']:>7.3f} {row['speedup']:>7.2f}× "
              f"{row['kernel_s']:>8.2f} {row['page_faults']:>9.0f} {row['max_abs_diff']:>9.1e}")  # fmt: skip
    write_result(args.out, {"rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
