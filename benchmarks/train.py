"""Training benchmark: step time and peak memory (tiny and paper-scale), and data-loader wait share.

    python benchmarks/train.py [--steps N] [--out benchmarks/results/train.json]

Step = forward, L1 + quantizer terms, backward, gradient clipping, AdamW step, on random pixels
of the stated shape (fp32 on CPU; bf16 autocast too on CUDA). The loader share comes from a real
``omnipipe train`` run of the tiny spec's image stage (shortened), which logs data wait and step time.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from measure import PeakMemory, best_time

from omnipipe.data.prepare import prepare
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # spec, batch, frames, height, width
    ("tiny.yaml", 16, 1, 32, 32),
    ("tiny.yaml", 8, 5, 32, 32),
    ("omnitokenizer-imagenet-vq.yaml", 1, 1, 256, 256),
    ("omnitokenizer-ucf101-joint.yaml", 1, 17, 128, 128),
]


def training_step(spec_name: str, batch: int, frames: int, height: int, width: int, device: torch.device,
                  bf16: bool = False) -> tuple[Tokenizer, Callable[[nn.Module], None]]:  # fmt: skip
    """The spec's tokenizer, and one training step of it on random pixels through a given net (it, or it compiled)."""
    spec = parse_spec((ROOT / "pipelines" / spec_name).read_text(), spec_name)
    model = Tokenizer.from_spec(spec.model, get_registry()).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, frames, height, width, device=device) * 2 - 1

    def step(net: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
            loss = (out.reconstruction.float() - x).abs().mean() + sum(out.quantizer.losses.values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return model, step


def step_row(spec_name: str, batch: int, frames: int, height: int, width: int, device: torch.device, bf16: bool, repeats: int) -> dict[str, Any]:
    model, step = training_step(spec_name, batch, frames, height, width, device, bf16)
    with PeakMemory(device) as memory:
        seconds = best_time(lambda: step(model), device, repeats)
    return {"spec": spec_name, "shape": f"{batch}x{frames}x{height}x{width}", "device": device.type,
            "dtype": "bf16" if bf16 else "fp32", "step_s": seconds, "frames_per_s": batch * frames / seconds,
            "peak_mib": memory.mib, "params_m": sum(p.numel() for p in model.parameters()) / 1e6}  # fmt: skip


def loader_share(steps: int) -> dict[str, Any]:
    """Run the tiny image stage for ``steps`` steps in a temporary folder; mean data wait / step time."""
    from omnipipe.train.trainer import train_stage

    with tempfile.TemporaryDirectory() as folder:
        raw = yaml.safe_load((ROOT / "pipelines" / "tiny.yaml").read_text())
        raw["outputs"]["dir"] = f"{folder}/outputs"
        raw["data"]["prepared_dir"] = f"{folder}/prepared"
        for stage in raw["train"]["stages"].values():
            stage["steps"] = steps
        spec = parse_spec(yaml.safe_dump(raw), "tiny.yaml")
        prepare(spec.data, get_registry(), progress=False)
        paths = train_stage(spec, "image_pretrain", get_registry())
        plots = paths.live_dir / "plots" / "metrics" / "time"
        wait = [float(line.split("\t")[1]) for line in (plots / "data_wait_s.tsv").read_text().splitlines()[2:]]
        step = [float(line.split("\t")[1]) for line in (plots / "step_s.tsv").read_text().splitlines()[2:]]
    return {"steps": len(step), "step_s_median": statistics.median(step), "data_wait_s_median": statistics.median(wait),
            "data_wait_share": sum(wait) / sum(step)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="steps of the real tiny run (loader share)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "train.json")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [
        step_row(*case, device=device, bf16=bf16, repeats=args.repeats)
        for device in devices
        for bf16 in ((False, True) if device.type == "cuda" else (False,))
        for case in CASES
    ]
    print(f"{'spec':34} {'B×T×H×W':14} {'dev':4} {'dtype':5} {'step s':>8} {'frames/s':>9} {'peak MiB':>9} {'params M':>9}")
    for r in rows:
        print(f"{r['spec']:34} {r['shape']:14} {r['device']:4} {r['dtype']:5} {r['step_s']:8.3f} "
              f"{r['frames_per_s']:9.1f} {r['peak_mib']:9.0f} {r['params_m']:9.2f}")  # fmt: skip
    share = loader_share(args.steps)
    print(f"tiny image stage, {share['steps']} real steps: median step {share['step_s_median'] * 1000:.1f} ms, "
          f"median data wait {share['data_wait_s_median'] * 1000:.2f} ms, data wait share {share['data_wait_share']:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                    "steps": rows, "loader": share}, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
