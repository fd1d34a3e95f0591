"""``omnipipe reconstruct``: run a trained tokenizer on images/videos, write side-by-side PNGs and mp4s."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from omnipipe.commands.device import checked_device
from omnipipe.commands.media_args import add_media_arguments, fps_of, frames_of, resolution_of
from omnipipe.errors import OmnipipeError

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
    from omnipipe.evaluate.media_input import SkippedMedia, read_media
    from omnipipe.evaluate.visuals import side_by_side, write_clip, write_png
    from omnipipe.metrics.psnr import psnr
    from omnipipe.nn.errors import InputShapeError
    from omnipipe.vtok import load_tokenizer

    device = checked_device(args.device)
    model = load_tokenizer(args.checkpoint, device=device)
    resolution, frames, fps = resolution_of(args.resolution, model), frames_of(args.frames, model), fps_of(args.fps)
    done, skipped, used = [], [], set()
    for path in args.inputs:
        try:
            pixels = read_media(path, resolution, frames, fps).to(device)
        except SkippedMedia as error:
            print(f"omnipipe: skipped {error}", file=sys.stderr)
            skipped.append({"path": str(path), "reason": error.reason})
            continue
        try:
            with torch.inference_mode():
                recon = model(pixels).reconstruction
        except InputShapeError as error:
            raise InputShapeError(f"{path}: {error}") from None
        sides = side_by_side(pixels[0], recon[0])
        target = _unused(args.out / f"{path.stem}{'.png' if pixels.shape[2] == 1 else '.mp4'}", used)
        if pixels.shape[2] == 1:
            write_png(target, sides[0], scale=1)
        else:
            write_clip(target, sides, fps=round(fps), scale=1)
        value = psnr(recon, pixels).item()
        done.append({"path": str(path), "output": str(target), "psnr": value, "frames": pixels.shape[2]})
        print(f"{target}: PSNR {value:.2f} dB ({pixels.shape[2]} frames, {resolution[0]}×{resolution[1]})")
    write_json(args.out / REPORT_FILE, {"files": done, "skipped": skipped})
    if not done:
        raise OmnipipeError(f"no input could be reconstructed ({len(skipped)} skipped, see {args.out / REPORT_FILE})")
    if skipped:
        print(f"{len(skipped)} of {len(args.inputs)} inputs skipped (listed in {args.out / REPORT_FILE})")
    return 0


def _unused(target: Path, used: set[Path]) -> Path:
    """``target``, or ``name-2.ext``, ``name-3.ext``… when an earlier input of this run took that name."""
    candidate, number = target, 1
    while candidate in used:
        number += 1
        candidate = target.with_name(f"{target.stem}-{number}{target.suffix}")
    used.add(candidate)
    return candidate
