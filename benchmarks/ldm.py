"""Latent diffusion benchmark: sampling time per image / clip against the step count; training step time and peak memory.

    python benchmarks/ldm.py [--repeats N] [--cpu-paper-depth D] [--out benchmarks/results/ldm.json]

Models come from the specs: the tiny default's ``ldm`` entry (pipelines/tiny.yaml) and the
paper-scale DiT-XL/2 (ImageNet 256², 1×32×32×8 latents) and Latte-XL/2 (UCF-101, 5×32×32×8). Weights
are random with fitted-identity latent scaling (speed does not depend on them). Sampling uses CFG
(two network evaluations per step and sample; Heun doubles that again). Training step = ``losses``,
backward, gradient clipping, AdamW step. On CPU the paper-width models run with ``--cpu-paper-depth``
of their blocks (time and memory grow linearly with depth; the row says how many); on CUDA with all of
them, in fp32 and bf16 autocast.
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
from omnipipe.generate.ldm import LatentDiffusionGenerator
from omnipipe.spec.generate import token_grid, tokenizer_bottleneck
from omnipipe.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[1]
# spec, generator entry, classes, training batch (None: the spec's), sampling batch and step counts per device
CASES = [
    ("tiny.yaml", "ldm", 10, None, {"cpu": (20, (10, 20, 50, 100)), "cuda": (100, (10, 20, 50, 100))}),
    ("dit-xl2-imagenet256.yaml", "dit_xl2", 1000, {"cpu": 2, "cuda": 32}, {"cpu": (1, (1, 2)), "cuda": (16, (25, 50, 250))}),
    ("latte-xl2-ucf101.yaml", "latte_xl2", 101, {"cpu": 1, "cuda": 8}, {"cpu": (1, (1,)), "cuda": (4, (25, 50, 250))}),
]  # fmt: skip


def build(spec_name: str, entry_name: str, classes: int, depth: int | None) -> tuple[LatentDiffusionGenerator, Any]:
    """The entry's model (optionally cut to ``depth`` blocks) on the latent grid and channels its spec gives."""
    spec = load_spec(ROOT / "pipelines" / spec_name)
    entry = spec.generate.generators[entry_name]
    dataset = spec.generate.tokens[entry.tokens]
    params = entry.model.params
    if depth is not None and depth < params.depth:
        params = params.model_copy(update={"depth": depth})
    _, channels = tokenizer_bottleneck(spec, dataset.tokenizer)
    layout = TokenLayout.grid_of("latents", token_grid(spec, dataset), channels, classes)
    model = LatentDiffusionGenerator(params, layout)
    model.fit_token_statistics([torch.randn(4, layout.length, channels)])
    return model, entry


def sample_rows(model: LatentDiffusionGenerator, case: str, device: torch.device, bf16: bool, batch: int,
                step_counts: tuple[int, ...], sampler: str, repeats: int) -> list[dict[str, Any]]:  # fmt: skip
    model = model.to(device).eval()
    labels = torch.arange(batch, device=device) % model.layout.num_classes
    rows = []
    for steps in step_counts:
        def run() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                model.sample(labels, generator=torch.Generator(device).manual_seed(0), steps=steps, sampler=sampler, cfg_scale=2.0)

        seconds = best_time(run, device, repeats)
        rows.append({"case": case, "what": f"sample {sampler}", "device": device.type, "dtype": "bf16" if bf16 else "fp32",
                     "steps": steps, "batch": batch, "seconds": seconds, "per_item_s": seconds / batch})  # fmt: skip
    return rows


def train_row(model: LatentDiffusionGenerator, case: str, device: torch.device, bf16: bool, batch: int, repeats: int) -> dict[str, Any]:
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    layout = model.layout
    tokens = torch.randn(batch, layout.length, layout.channels, device=device)
    data = TokenBatch(tokens, torch.arange(batch, device=device) % layout.num_classes)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.losses(data)["mse"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    with PeakMemory(device) as memory:
        seconds = best_time(step, device, repeats)
    return {"case": case, "what": "train step", "device": device.type, "dtype": "bf16" if bf16 else "fp32", "steps": None,
            "batch": batch, "seconds": seconds, "per_item_s": seconds / batch, "peak_mib": memory.mib}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="timed calls after one warm-up call (best is kept)")
    parser.add_argument("--cpu-paper-depth", type=int, default=4, help="blocks of the paper-width models on CPU")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ldm.json")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows: list[dict[str, Any]] = []
    for device in devices:
        for spec_name, entry_name, classes, train_batch, sampling in CASES:
            paper = train_batch is not None
            depth = args.cpu_paper_depth if paper and device.type == "cpu" else None
            model, entry = build(spec_name, entry_name, classes, depth)
            p = model.params
            case = (f"{entry_name} {p.blocks} d{p.depth} w{p.width} p{p.patch_size} {'×'.join(map(str, model.layout.grid))}"
                    f" ({sum(x.numel() for x in model.parameters()) / 1e6:.1f} M)")  # fmt: skip
            sample_batch, step_counts = sampling[device.type]
            default_sampler = entry.sample.settings.get("sampler") or model.objective.default_sampler
            samplers = ("euler", "heun") if model.params.objective == "flow" else (default_sampler,)
            for bf16 in (False, True) if device.type == "cuda" else (False,):
                for sampler in samplers:
                    rows += sample_rows(model, case, device, bf16, sample_batch, step_counts, sampler, args.repeats)
                batch = train_batch[device.type] if paper else entry.train.batch_size
                rows.append(train_row(model, case, device, bf16, batch, args.repeats))
            del model
    print(f"{'model':58} {'what':14} {'dev':4} {'dtype':5} {'steps':>5} {'batch':>5} {'s':>8} {'s/item':>8} {'peak MiB':>9}")
    for r in rows:
        peak = f"{r['peak_mib']:9.0f}" if "peak_mib" in r else f"{'':9}"
        print(f"{r['case']:58} {r['what']:14} {r['device']:4} {r['dtype']:5} {r['steps'] or '':>5} {r['batch']:5d} "
              f"{r['seconds']:8.3f} {r['per_item_s']:8.4f} {peak}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                    "rows": rows}, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
