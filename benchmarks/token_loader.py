"""Token datasets stream to the generator trainer: the loader's wait as a share of step time, and its memory.

    python benchmarks/token_loader.py [--sequences 16384 262144] [--tokens 256] [--steps 30] [--out F]

For each of ``--sequences``: writes a token dataset in ``encode-tokens``' format (random codes, that many
sequences × ``--tokens`` int32 in chunks of 1,024 sequences, with labels), then trains the tiny spec's ``ar`` generator on it for
``--steps`` steps (batch 32) through the real stage (``GeneratorTask``, ``run_training``): the loop logs
each step's time and the time it waited for its batch. Reported: median step, median wait, the wait's
share of the step time (the issue's target: ≤ 5 %), and the process's peak resident memory rise
during training next to the dataset's size on disk: flat in the dataset's size when the chunks are
memory-mapped and rows read as sampled.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from measure import PeakMemory, write_result

from omnipipe.generate.contract import TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.task import GeneratorTask, generator_loop_settings
from omnipipe.generate.token_dataset import FORMAT, INDEX_FILE, chunk_path
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec
from omnipipe.train.loop import run_training

ROOT = Path(__file__).resolve().parents[1]
CHUNK, VOCAB, CLASSES = 1024, 256, 10


def write_dataset(root: Path, sequences: int, tokens: int) -> int:
    """Random codes in the token-dataset format (train: ``sequences``, val: one chunk); bytes of token files."""
    rng = np.random.default_rng(0)
    layout = TokenLayout.grid_of("codes", (1, tokens // 32, 32), VOCAB, num_classes=CLASSES)
    splits: dict[str, list[dict[str, Any]]] = {}
    written = 0
    for split, count in (("train", sequences), ("val", CHUNK)):
        splits[split] = []
        for number, start in enumerate(range(0, count, CHUNK)):
            rows = min(CHUNK, count - start)
            arrays = {"tokens": rng.integers(0, VOCAB, (rows, tokens), dtype=np.int32), "labels": rng.integers(0, CLASSES, rows),
                      "clips": np.arange(start, start + rows), "flipped": np.zeros(rows, bool)}  # fmt: skip
            (root / split).mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                np.save(root / chunk_path(split, number, name), array)
            written += arrays["tokens"].nbytes
            splits[split].append({"count": rows, **{name: chunk_path(split, number, name) for name in arrays}})
    index = {"format": FORMAT, "layout": layout.to_json(), "classes": [f"c{i}" for i in range(CLASSES)], "kind": "image",
             "resolution": [tokens // 32 * 8, 256], "tokenizer": "joint", "flip": False, "fingerprint": "benchmark", "splits": splits}  # fmt: skip
    (root / INDEX_FILE).write_text(json.dumps(index))
    return written


def measure(sequences: int, tokens: int, steps: int) -> dict[str, Any]:
    """Train on a fresh dataset of ``sequences`` sequences; the loader's wait and the memory."""
    with tempfile.TemporaryDirectory() as folder:
        raw = yaml.safe_load((ROOT / "pipelines" / "tiny.yaml").read_text())
        raw["outputs"] = {"dir": f"{folder}/outputs"}
        raw["generate"]["generators"] = {"g": {"tokens": "digits", "model": {"type": "ar", "width": 64, "depth": 4, "num_heads": 4},
                                               "train": {"steps": steps, "batch_size": 32, "checkpoint_every": 10**6}}}  # fmt: skip
        spec = parse_spec(yaml.safe_dump(raw), "tiny.yaml", get_registry())
        size = write_dataset(GenerationPaths.of(spec).tokens("digits"), sequences, tokens)
        settings = generator_loop_settings(spec, "g", device="cpu")
        with PeakMemory(torch.device("cpu")) as memory:
            run_training(settings, lambda ctx: GeneratorTask(spec, "g", get_registry(), ctx))
        plots = settings.live_dir / "plots" / "metrics" / "time"
        wait, step = ([float(line.split("\t")[1]) for line in (plots / f"{name}.tsv").read_text().splitlines()[2:]]
                      for name in ("data_wait_s", "step_s"))  # fmt: skip
    return {"sequences": sequences, "dataset_mib": size / 2**20, "steps": len(step), "step_s_median": statistics.median(step),
            "data_wait_s_median": statistics.median(wait), "data_wait_share": sum(wait) / sum(step), "peak_rise_mib": memory.mib}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, nargs="+", default=[16384, 262144])
    parser.add_argument("--tokens", type=int, default=256, help="tokens per sequence (a multiple of 32)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "token_loader.json")
    args = parser.parse_args()
    rows = [measure(sequences, args.tokens, args.steps) for sequences in args.sequences]
    for row in rows:
        print(f"ar (tiny) on {row['sequences']} × {args.tokens} tokens ({row['dataset_mib']:.0f} MiB of tokens), batch 32, "
              f"{row['steps']} steps after the first: median step {row['step_s_median'] * 1000:.0f} ms, median wait "
              f"{row['data_wait_s_median'] * 1000:.2f} ms, wait share {row['data_wait_share']:.1%}; "
              f"peak memory rise {row['peak_rise_mib']:.0f} MiB")  # fmt: skip
    write_result(args.out, {"tokens": args.tokens, "rows": rows})


if __name__ == "__main__":
    main()
