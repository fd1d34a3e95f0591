"""Reference benchmark: the released OmniTokenizer network in omnipipe, at the paper width, against the reference.

    python benchmarks/reference.py [--repeats N] [--quick] [--out benchmarks/results/reference.json]

The network is ``train.sh``'s stage 2 (512 wide, 51 M parameters) imported from seeded weights
(``omnipipe.reference.synthetic``), so its outputs are the reference program's (tests/test_reference_import.py).
Workloads, fp32 and bf16 autocast: encode+decode of a 256² image and a 17×128² clip, and a training
step (forward, L1 + commitment, backward, Adam) on a 128² image and a 17×64² clip (sized for a
2-core CPU). Each time is the median of ``--repeats`` calls, the columns called in turn; FLOPs from
``measure.count_flops`` (attention included). This script times omnipipe alone; ``compare`` takes more columns — the
reference column of benchmarks/results/reference.json was measured by calling it from a separate
checkout of FoundationVision/OmniTokenizer with the same weights and inputs (that code is not part
of this repository).
"""
from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from measure import count_flops, interleaved_medians

from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.reference.architecture import ReferenceArchitecture
from omnipipe.reference.convert import tokenizer_from_reference
from omnipipe.reference.synthetic import synthetic_pixels, synthetic_reference_state_dict

STAGE2_NETWORK = {  # the network flags of scripts/recons/train.sh, stage 2
    "embedding_dim": 512, "heads": 8, "dim_head": 64, "patch_size": 8, "temporal_patch_size": 4,
    "spatial_depth": 4, "temporal_depth": 4, "enc_block": "ttww", "dec_block": "tttt", "twod_window_size": 8,
    "spatial_pos": "rope", "causal_in_temporal_transformer": True, "causal_in_peg": True,
    "n_codes": 8192, "codebook_dim": 8, "l2_code": True, "no_random_restart": True,
}
WEIGHTS_SEED = 11
CASES = [  # (task, input shape (B, C, T, H, W))
    ("encode_decode", (1, 3, 1, 256, 256)),
    ("encode_decode", (1, 3, 17, 128, 128)),
    ("train_step", (1, 3, 1, 128, 128)),
    ("train_step", (1, 3, 17, 64, 64)),
]
QUICK_CASES = [("encode_decode", (1, 3, 1, 128, 128)), ("train_step", (1, 3, 1, 128, 128))]
Workload = Callable[[str, torch.Tensor, bool], Callable[[], Any]]


def omnipipe_tokenizer() -> Tokenizer:
    """The stage-2 network with the seeded weights, in eval mode."""
    arch = ReferenceArchitecture.model_validate(STAGE2_NETWORK)
    return tokenizer_from_reference(synthetic_reference_state_dict(arch, WEIGHTS_SEED), arch, "benchmark")[0]


def omnipipe_workload() -> Workload:
    """``make(task, x, bf16)`` → a zero-argument call running that task on omnipipe (one model per task)."""
    models = {"encode_decode": omnipipe_tokenizer(), "train_step": omnipipe_tokenizer().train()}
    optimizer = torch.optim.Adam(models["train_step"].parameters(), lr=1e-5, betas=(0.5, 0.9))

    def make(task: str, x: torch.Tensor, bf16: bool) -> Callable[[], Any]:
        model = models[task]
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16)

        def encode_decode() -> torch.Tensor:
            with torch.inference_mode(), autocast:
                return model.decode(model.quantize(model.encode(x)).z_q)

        def train_step() -> None:
            with autocast:
                out = model(x)
                loss = F.l1_loss(out.reconstruction.float(), x) + out.quantizer.losses["commitment"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return encode_decode if task == "encode_decode" else train_step

    return make


def compare(columns: dict[str, Workload], cases: list[tuple[str, tuple[int, ...]]], repeats: int) -> list[dict[str, Any]]:
    """Median seconds of every column on every case and precision; FLOPs of the first column's call."""
    rows = []
    for task, shape in cases:
        x = synthetic_pixels(0, shape)
        for precision in ("fp32", "bf16"):
            calls = {name: make(task, x, precision == "bf16") for name, make in columns.items()}
            seconds = interleaved_medians(calls, x.device, repeats)
            flops = count_flops(next(iter(calls.values())))
            rows.append({"task": task, "shape": list(shape), "dtype": precision, "seconds": seconds, "flops": flops})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    names = list(rows[0]["seconds"])
    header = "".join(f"{name + ' s':>14}" for name in names)
    ratio = f"{names[1] + '/' + names[0]:>20}" if len(names) > 1 else ""
    print(f"{'task':<14}{'input B×C×T×H×W':<20}{'dtype':<6}{header}{ratio}{'GFLOP':>9}{'GFLOP/s':>9}")
    for r in rows:
        times = "".join(f"{r['seconds'][name]:>14.3f}" for name in names)
        speedup = f"{r['seconds'][names[1]] / r['seconds'][names[0]]:>20.2f}" if len(names) > 1 else ""
        shape = "×".join(str(s) for s in r["shape"])
        first = r["seconds"][names[0]]
        print(f"{r['task']:<14}{shape:<20}{r['dtype']:<6}{times}{speedup}{r['flops'] / 1e9:>9.1f}"
              f"{r['flops'] / first / 1e9:>9.1f}")


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per column and case (median)")
    parser.add_argument("--quick", action="store_true", help="two small cases")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    rows = compare({"omnipipe": omnipipe_workload()}, QUICK_CASES if args.quick else CASES, args.repeats)
    print_table(rows)
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": machine(), "repeats": args.repeats, "rows": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
