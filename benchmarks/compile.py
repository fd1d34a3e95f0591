"""``--compile`` against eager: training steps of ``benchmarks/train.py``'s cases, interleaved in one run, on CPU.

    python benchmarks/compile.py [--repeats 7] [--out benchmarks/results/compile.json]

Each case builds the spec's tokenizer and times one training step (forward, L1 + quantizer terms,
backward, clipping, AdamW) eagerly and through ``omnipipe.train.compiled.compiled_for_training``
(what ``omnipipe train --compile`` runs), alternating the two (medians of ``--repeats`` rounds), after
the first compiled call, whose time is the compile cost (inductor's caches in a fresh temporary
folder, so nothing compiled earlier is reused). ``break-even``: steps after which compiling has paid
for itself.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from measure import interleaved_medians
from train import CASES, ROOT, training_step

from omnipipe.train.compiled import compiled_for_training


def case_row(spec_name: str, batch: int, frames: int, height: int, width: int, repeats: int) -> dict[str, Any]:
    cpu = torch.device("cpu")
    model, step = training_step(spec_name, batch, frames, height, width, cpu)
    compiled = compiled_for_training(model, cpu)
    started = time.perf_counter()
    step(compiled)
    compile_s = time.perf_counter() - started
    medians = interleaved_medians({"eager": lambda: step(model), "compiled": lambda: step(compiled)}, cpu, repeats)
    saved = medians["eager"] - medians["compiled"]
    return {"spec": spec_name, "shape": f"{batch}x{frames}x{height}x{width}", "eager_step_s": medians["eager"],
            "compiled_step_s": medians["compiled"], "speedup": medians["eager"] / medians["compiled"],
            "first_compiled_call_s": compile_s, "break_even_steps": compile_s / saved if saved > 0 else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compile.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # read at each compile: cold caches
        rows = [case_row(*case, repeats=args.repeats) for case in CASES]
    print(f"{torch.get_num_threads()} threads, fp32 CPU, training steps, medians of {args.repeats} interleaved rounds")
    print(f"{'spec':34} {'B×T×H×W':14} {'eager s':>8} {'compiled s':>10} {'speed-up':>8} {'1st call s':>10} {'break-even':>10}")
    for r in rows:
        even = f"{r['break_even_steps']:.0f} steps" if r["break_even_steps"] is not None else "never"
        print(f"{r['spec']:34} {r['shape']:14} {r['eager_step_s']:8.3f} {r['compiled_step_s']:10.3f} {r['speedup']:7.2f}× "
              f"{r['first_compiled_call_s']:10.1f} {even:>10}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                                    "torch": torch.__version__, "rows": rows}, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
