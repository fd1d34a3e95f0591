"""Generator benchmark: sampling speed (KV cache or not, masked vs ar) and training step time / peak memory.

    python benchmarks/generators.py [--repeats N] [--paper-tokens 1024] [--out benchmarks/results/generators.json]

Sampling: tokens per second of one class-conditional sample with CFG (so two sequences run per
sample), random weights, batch 1, on the tiny spec's ``ar`` size — ``ar`` with and without its KV
cache at 256 and 1,024 tokens, ``masked`` at 8 steps at the same lengths. Training: one step
(losses, backward, clipping, AdamW) at the tiny width (64 tokens, batch 32) and at the paper width
(GPT-L: 24 layers, width 1024, 16 heads; ``--paper-tokens`` tokens, batch 1 on CPU, 8 on CUDA),
fp32 on CPU, bf16 autocast too on CUDA. Ratios are measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from measure import PeakMemory, best_time

from omnipipe.generate.contract import TokenBatch, TokenLayout
from omnipipe.plugins import get_registry

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 64, "depth": 4, "num_heads": 4}  # the tiny spec's ar
PAPER = {"width": 1024, "depth": 24, "num_heads": 16}
GRIDS = {256: (1, 16, 16), 1024: (1, 32, 32), 64: (1, 8, 8)}
VOCAB, CLASSES = 256, 10


def build(kind: str, size: dict[str, int], tokens: int, device: torch.device, vocab: int = VOCAB) -> torch.nn.Module:
    layout = TokenLayout.grid_of("codes", GRIDS[tokens], vocab, num_classes=CLASSES)
    torch.manual_seed(0)
    return get_registry().build("generator", {"type": kind, **size}, layout=layout).to(device)


def sampling_rows(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for tokens in (256, 1024):
        cases = [("ar", {"kv_cache": True}), ("ar", {"kv_cache": False}), ("masked", {"steps": 8})]
        for kind, settings in cases:
            model = build(kind, TINY, tokens, device).eval()
            labels = torch.tensor([3], device=device)

            def draw(model: torch.nn.Module = model, settings: dict[str, Any] = settings) -> None:
                model.sample(labels, generator=torch.Generator(device).manual_seed(0), cfg_scale=2.0, **settings)

            seconds = best_time(draw, device, repeats)
            rows.append({"what": "sample", "generator": kind, "settings": settings, "tokens": tokens,
                         "seconds": seconds, "tokens_per_s": tokens / seconds})  # fmt: skip
    return rows


def training_row(size_name: str, size: dict[str, int], tokens: int, batch: int, device: torch.device,
                 bf16: bool, repeats: int) -> dict[str, Any]:  # fmt: skip
    model = build("ar", size, tokens, device, vocab=8192 if size is PAPER else VOCAB).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = TokenBatch(torch.randint(0, model.layout.vocab_size, (batch, tokens), device=device),
                      torch.randint(0, CLASSES, (batch,), device=device))  # fmt: skip

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = sum(model(data).values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()  # optimizer state exists before memory is measured
    with PeakMemory(device) as peak:
        seconds = best_time(step, device, repeats)
    params = sum(p.numel() for p in model.parameters())
    return {"what": "train", "size": size_name, "params_m": params / 1e6, "tokens": tokens, "batch": batch,
            "bf16": bf16, "seconds": seconds, "peak_mib": peak.mib}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--paper-tokens", type=int, choices=(256, 1024), default=256, help="sequence length at paper width")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generators.json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = sampling_rows(device, args.repeats)
    cached = {r["tokens"]: r["seconds"] for r in rows if r["generator"] == "ar" and r["settings"]["kv_cache"]}
    full = {r["tokens"]: r["seconds"] for r in rows if r["generator"] == "ar" and not r["settings"]["kv_cache"]}
    speedups = {tokens: full[tokens] / cached[tokens] for tokens in cached}
    precisions = [False, True] if device.type == "cuda" else [False]
    for bf16 in precisions:
        rows.append(training_row("tiny", TINY, 64, 32, device, bf16, args.repeats))
        rows.append(training_row("paper (GPT-L)", PAPER, args.paper_tokens, 8 if device.type == "cuda" else 1, device, bf16, 1))
    print(f"device: {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}")
    print("| what | model | tokens | seconds | tokens/s or peak MiB |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        if r["what"] == "sample":
            print(f"| sample | {r['generator']} {r['settings']} | {r['tokens']} | {r['seconds']:.3f} | {r['tokens_per_s']:.0f} tokens/s |")
        else:
            print(f"| train step | ar {r['size']} {r['params_m']:.1f} M, batch {r['batch']}{', bf16' if r['bf16'] else ''} "
                  f"| {r['tokens']} | {r['seconds']:.3f} | {r['peak_mib']:.0f} MiB |")  # fmt: skip
    print("KV cache speed-up: " + ", ".join(f"{t} tokens {s:.1f}×" for t, s in speedups.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": str(device), "torch": torch.__version__, "rows": rows,
                                    "kv_cache_speedup": speedups}, indent=1) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
