"""Data-layer throughput on this machine: decoding, ``prepare`` and the loader, next to a tiny model step.

    python benchmarks/data.py [--out benchmarks/results/data.json]

Prints a table and writes the numbers as JSON. Uses only the embedded media (offline).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import torch

from omnipipe.data.components import register
from omnipipe.data.decode import read_image, read_video_clips
from omnipipe.data.loader import make_loader
from omnipipe.data.media import ClipSampling
from omnipipe.data.prepare import prepare
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec


def timed(work: Callable[[], int]) -> tuple[int, float]:
    """(frames done, seconds) of ``work()``, which returns how many frames it produced."""
    began = time.perf_counter()
    frames = work()
    return frames, time.perf_counter() - began


def decode_rows(registry: Registry) -> list[dict[str, Any]]:
    items = registry.build("dataset", {"type": "embedded_media", "max_clips_per_video": None}).scan()
    rows = []
    for item in items:
        if item.kind != "video":
            continue
        with av.open(str(item.path)) as container:  # every source frame, shrunk as prepare does for 64×64
            sampling = ClipSampling(fps=float(container.streams.video[0].average_rate), frames=1, stride=1)
        frames, seconds = timed(lambda: len(read_video_clips(item.path, sampling, (72, 72))))
        rows.append({"what": f"decode {item.path.name}", "frames": frames, "seconds": seconds})
    images = [item for item in items if item.kind == "image"]
    frames, seconds = timed(lambda: sum(len(read_image(item.path, (72, 72))) for item in images))
    rows.append({"what": f"decode {len(images)} skimage images", "frames": frames, "seconds": seconds})
    return rows


def tiny_data(registry: Registry, out: Path) -> DataSpec:
    data = DataSpec.model_validate({
        "sources": [{"type": "embedded_media", "max_clips_per_video": 8}], "prepared_dir": str(out),
        "fps": 8, "clip_frames": 9, "clip_stride": 4, "resolutions": [[32, 32], [64, 64]],
        "split_unit": "clip", "val_fraction": 0.2, "files_per_shard": 4,
    })  # fmt: skip
    for entry in data.sources:
        entry.resolve(registry)
    return data


def loader_rows(spec: Experiment, stages: dict[str, StageSpec], batches: int) -> list[dict[str, Any]]:
    rows = []
    for name, stage in stages.items():
        for workers in (0, 2):
            loader = make_loader(spec, stage, num_workers=workers, num_batches=batches)
            frames, seconds = timed(lambda: sum(b.pixels.shape[0] * b.pixels.shape[2] for b in loader))
            rows.append({"what": f"loader {name}, {workers} workers", "frames": frames, "seconds": seconds,
                         "ms_per_batch": 1000 * seconds / batches})  # fmt: skip
    return rows


def model_rows(spec: Experiment, stage: StageSpec, steps: int) -> list[dict[str, Any]]:
    """A forward+backward step of a tiny tokenizer on the same batches, when the model package exists."""
    try:
        from omnipipe.nn.components import register as register_nn
        from omnipipe.nn.tokenizer import Tokenizer
        from omnipipe.spec.model import ModelSpec
    except ImportError:
        return []
    registry = Registry()
    register_nn(registry)
    stack = {"width": 64, "num_heads": 4, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]}
    model = Tokenizer.from_spec(ModelSpec.model_validate({
        "patchifier": {"type": "omni", "patch_size": 8, "temporal_patch_size": 4}, "encoder": stack,
        "quantizer": {"type": "vq", "codebook_size": 256, "code_dim": 8}, "decoder": stack,
    }), registry).train()  # fmt: skip
    batches = list(make_loader(spec, stage, num_batches=steps))

    def run() -> int:
        for batch in batches:
            out = model(batch.pixels)
            (out.reconstruction - batch.pixels).abs().mean().backward()
        return sum(b.pixels.shape[0] * b.pixels.shape[2] for b in batches)

    run()  # warm-up
    frames, seconds = timed(run)
    return [{"what": "tiny tokenizer fwd+bwd, joint", "frames": frames, "seconds": seconds,
             "ms_per_batch": 1000 * seconds / steps}]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/data.json")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    registry = Registry()
    register(registry)
    rows = decode_rows(registry)
    with tempfile.TemporaryDirectory() as tmp:
        data = tiny_data(registry, Path(tmp) / "prepared")
        for workers in (1, 2):
            shutil.rmtree(Path(tmp) / "prepared", ignore_errors=True)  # nothing to resume: time the whole job
            result = prepare(data, registry, workers=workers, progress=False)
            clips = result.report["splits"]["train"]
            rows.append({"what": f"prepare tiny ({workers} worker{'s' if workers > 1 else ''})",
                         "frames": clips["image"] + 9 * clips["video"], "seconds": result.seconds})  # fmt: skip
        spec = Experiment.model_construct(name="bench", seed=0, data=data)
        stages = {"images 32 b8": StageSpec(data="images", steps=1, batch_size=8, resolutions=[[32, 32]]),
                  "joint 32+64 b4": StageSpec(data="joint", steps=1, batch_size=4)}  # fmt: skip
        rows += loader_rows(spec, stages, args.batches)
        rows += model_rows(spec, stages["joint 32+64 b4"], steps=10)
    for row in rows:
        row["frames_per_s"] = row["frames"] / row["seconds"] if row["seconds"] else float("inf")
    print(f"{'benchmark':42} {'frames':>7} {'seconds':>8} {'frames/s':>10} {'ms/batch':>9}")
    for row in rows:
        ms = f"{row['ms_per_batch']:.1f}" if "ms_per_batch" in row else ""
        print(f"{row['what']:42} {row['frames']:7d} {row['seconds']:8.3f} {row['frames_per_s']:10.0f} {ms:>9}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
