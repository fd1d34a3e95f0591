"""Streaming vs whole-clip encode+decode: equality, time and peak memory as the video grows.

    python benchmarks/streaming.py [--frames 17 65 257 1025] [--side 64] [--budget-side 256] [--out F]

The paper-scale configuration of ``benchmarks/tokenizer.py`` (51 M parameters, fp32, inference mode)
reconstructs (encode → VQ → decode) one video of each length four ways: the whole clip at once and
streamed in chunks of ``--chunk`` latent frames (``omnipipe.nn.streaming``), each for the model as it
is (full causal context: the streamed KV cache grows with the video) and for the same weights with
``max_context`` latent frames on every causal layer (the cache stops growing). Streamed codes are
compared with the whole clip's of the same model (equal or not), reconstructions by their largest
difference. The video is made piece by piece (16 frames at a time) as a decoder would deliver it;
the whole-clip runs hold all of it. Then ``--budget-side`` (256²): the bounded model streamed at two
lengths, the peak memory a video of any length needs and the time per frame (→ a 10-minute video).

Peak memory: the rise of the process's resident high-water mark during the call (``measure.PeakMemory``).
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from measure import PeakMemory
from tokenizer import CONFIGS, build

from omnipipe.nn.components import register
from omnipipe.nn.streaming import DecoderStream, EncoderStream, aligned_chunks, tube_frames
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry

PIECE = 16  # frames a decoder hands over at a time


def bounded(config: dict[str, Any], context: int) -> dict[str, Any]:
    """``config`` with ``max_context: context`` on every causal (temporal) layer."""
    variant = copy.deepcopy(config)
    for side in ("encoder", "decoder"):
        variant[side]["temporal"] = [{**entry, "max_context": context} for entry in variant[side]["temporal"]]
    return variant


def pieces(frames: int, side: int) -> Iterator[torch.Tensor]:
    """A video of ``frames`` frames (1, 3, t, side, side) in [-1, 1], made ``PIECE`` frames at a time (seeded per piece)."""
    for start in range(0, frames, PIECE):
        generator = torch.Generator().manual_seed(start)
        yield torch.rand(1, 3, min(PIECE, frames - start), side, side, generator=generator) * 2 - 1


def whole(model: Tokenizer, frames: int, side: int) -> dict[str, Any]:
    """Reconstruct the whole clip at once: time, peak memory, codes and reconstruction."""
    started = time.perf_counter()
    with PeakMemory(torch.device("cpu")) as memory, torch.inference_mode():
        x = torch.cat(list(pieces(frames, side)), dim=2)
        q = model.quantize(model.encode(x))
        recon = model.decode(q.z_q)
        del x
    return {"seconds": time.perf_counter() - started, "peak_mib": memory.mib, "codes": q.codes, "recon": recon}


def streamed(model: Tokenizer, frames: int, side: int, chunk: int, reference: dict[str, Any] | None) -> dict[str, Any]:
    """Reconstruct chunk by chunk; compare each chunk with the whole clip's ``reference`` when given."""
    codes, largest, done = [], 0.0, 0
    started = time.perf_counter()
    with PeakMemory(torch.device("cpu")) as memory, torch.inference_mode():
        encoder, decoder = EncoderStream(model), DecoderStream(model)
        for pixels in aligned_chunks(pieces(frames, side), tube_frames(model), chunk):
            q = model.quantize(encoder.push(pixels))
            recon = decoder.push(q.z_q)
            codes.append(q.codes)
            if reference is not None:
                target = reference["recon"][:, :, done : done + recon.shape[2]]
                largest = max(largest, float((recon - target).abs().max()))
            done += recon.shape[2]
    row = {"seconds": time.perf_counter() - started, "peak_mib": memory.mib,
           "cache_mib": (encoder.cache_bytes + decoder.cache_bytes) / 2**20, "frames_out": done}
    if reference is not None:
        stream_codes = torch.cat(codes, dim=1)
        row["codes_equal"] = bool(torch.equal(stream_codes, reference["codes"]))
        row["codes_differing"] = int((stream_codes != reference["codes"]).sum())
        row["max_abs_diff"] = largest
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[17, 65, 257, 1025])
    parser.add_argument("--side", type=int, default=64, help="frame side for the equality/time/memory table")
    parser.add_argument("--chunk", type=int, default=4, help="latent frames per chunk")
    parser.add_argument("--context", type=int, default=8, help="max_context of the bounded model (latent frames)")
    parser.add_argument("--budget-side", type=int, default=256, help="frame side of the memory-budget rows (0: skip)")
    parser.add_argument("--budget-frames", type=int, nargs="+", default=[17, 65])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/streaming.json"))
    args = parser.parse_args()
    registry = Registry()
    register(registry)
    cpu = torch.device("cpu")
    models = {"full": build(CONFIGS["paper"], registry, cpu), "bounded": build(bounded(CONFIGS["paper"], args.context), registry, cpu)}
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "config": "paper", "side": args.side, "chunk": args.chunk, "context": args.context, "rows": [], "budget": [],
    }
    print(f"paper config, {args.side}², fp32, chunks of {args.chunk} latent frames; bounded: max_context {args.context}")
    print(f"{'frames':>6} {'model':<8} {'whole s':>8} {'whole MiB':>10} {'stream s':>9} {'stream MiB':>11} "
          f"{'cache MiB':>10} {'codes equal':>12} {'max |Δ|':>9}")
    for frames in args.frames:
        for name, model in models.items():
            reference = whole(model, frames, args.side)
            row = streamed(model, frames, args.side, args.chunk, reference)
            results["rows"].append({"frames": frames, "model": name, "whole_seconds": reference["seconds"],
                                    "whole_peak_mib": reference["peak_mib"], **row})
            del reference
            print(f"{frames:>6} {name:<8} {results['rows'][-1]['whole_seconds']:>8.1f} {results['rows'][-1]['whole_peak_mib']:>10.0f} "
                  f"{row['seconds']:>9.1f} {row['peak_mib']:>11.0f} {row['cache_mib']:>10.1f} "
                  f"{str(row['codes_equal']):>12} {row['max_abs_diff']:>9.1e}", flush=True)
    if args.budget_side:
        print(f"bounded model streamed at {args.budget_side}² (no whole-clip run):")
        for frames in args.budget_frames:
            row = streamed(models["bounded"], frames, args.budget_side, args.chunk, None)
            per_frame = row["seconds"] / frames
            row.update(frames=frames, side=args.budget_side, s_per_frame=per_frame,
                       ten_minutes_30fps_hours=per_frame * 18000 / 3600)
            results["budget"].append(row)
            print(f"  {frames:>5} frames: peak {row['peak_mib']:.0f} MiB, cache {row['cache_mib']:.1f} MiB, "
                  f"{per_frame:.2f} s/frame encode+decode → 10 min at 30 fps: {row['ten_minutes_30fps_hours']:.1f} h", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
