"""``omnipipe reconstruct``: run a trained tokenizer on images/videos, write side-by-side PNGs and mp4s."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from omnipipe.commands.device import checked_device
from omnipipe.commands.media_args import add_media_arguments, chunk_of, fps_of, frames_of, resolution_of
from omnipipe.errors import OmnipipeError

if TYPE_CHECKING:
    from omnipipe.nn.tokenizer import Tokenizer
    from omnipipe.vtok import VTok

REPORT_FILE = "reconstruct_report.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconstruct", help="reconstruct images/videos with a trained tokenizer")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a stage's model.safetensors (OmniTokenizer or VTok)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    add_media_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.atomic import write_json
    from omnipipe.evaluate.media_input import SkippedMedia, read_media_pieces
    from omnipipe.nn.errors import InputShapeError
    from omnipipe.nn.streaming import tube_frames
    from omnipipe.vtok import load_tokenizer

    device = checked_device(args.device)
    model = load_tokenizer(args.checkpoint, device=device)
    resolution, frames, fps = resolution_of(args.resolution, model), frames_of(args.frames, model), fps_of(args.fps)
    chunk = chunk_of(args.chunk, model)
    done, skipped, used = [], [], set()
    for path in args.inputs:
        target = None
        try:
            kind, pieces = read_media_pieces(path, resolution, frames, fps, at_least=1 + tube_frames(model))
            target = _unused(args.out / f"{path.stem}{'.png' if kind == 'image' else '.mp4'}", used)
            value, count = _reconstruct(model, (p.to(device) for p in pieces), chunk if kind == "video" else None, target, fps)
        except InputShapeError as error:
            raise InputShapeError(f"{path}: {error}") from None
        except SkippedMedia as error:
            used.discard(target)
            print(f"omnipipe: skipped {error}", file=sys.stderr)
            skipped.append({"path": str(path), "reason": error.reason})
            continue
        done.append({"path": str(path), "output": str(target), "psnr": value, "frames": count})
        print(f"{target}: PSNR {value:.2f} dB ({count} frames, {resolution[0]}×{resolution[1]})")
    write_json(args.out / REPORT_FILE, {"files": done, "skipped": skipped})
    if not done:
        raise OmnipipeError(f"no input could be reconstructed ({len(skipped)} skipped, see {args.out / REPORT_FILE})")
    if skipped:
        print(f"{len(skipped)} of {len(args.inputs)} inputs skipped (listed in {args.out / REPORT_FILE})")
    return 0


def _reconstruct(model: Tokenizer | VTok, pieces: Iterator[torch.Tensor], chunk: int | None, target: Path, fps: float) -> tuple[float, int]:
    """Write the side-by-side picture (one frame) or mp4 of ``pieces`` and their reconstruction, streamed chunk by
    chunk; the PSNR over all frames and the frame count."""
    from omnipipe.evaluate.visuals import side_by_side, write_clip, write_png
    from omnipipe.metrics.psnr import psnr_of_mse, squared_error
    from omnipipe.nn.streaming import stream_reconstruct

    total, count, frames = 0.0, 0, 0

    def sides() -> Iterator[np.ndarray]:
        nonlocal total, count, frames
        with torch.inference_mode():
            for pixels, recon in stream_reconstruct(model, pieces, chunk):
                error = squared_error(recon, pixels)
                total, count, frames = total + float(error.sum()), count + error.numel(), frames + pixels.shape[2]
                yield from side_by_side(pixels[0], recon[0])

    if target.suffix == ".png":
        write_png(target, next(sides()), scale=1)
    else:
        write_clip(target, sides(), fps=round(fps), scale=1)
    return float(psnr_of_mse(torch.tensor(total / count))), frames


def _unused(target: Path, used: set[Path]) -> Path:
    """``target``, or ``name-2.ext``, ``name-3.ext``… when an earlier input of this run took that name."""
    candidate, number = target, 1
    while candidate in used:
        number += 1
        candidate = target.with_name(f"{target.stem}-{number}{target.suffix}")
    used.add(candidate)
    return candidate
