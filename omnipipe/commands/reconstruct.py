"""``omnipipe reconstruct``: run a trained tokenizer on images/videos, write side-by-side PNGs and mp4s."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from omnipipe.commands.media_args import add_media_arguments, resolution_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconstruct", help="reconstruct images/videos with a trained tokenizer")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image or video files")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a stage's model.safetensors (OmniTokenizer or VTok)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    add_media_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.evaluate.media_input import read_media
    from omnipipe.evaluate.visuals import side_by_side, write_clip, write_png
    from omnipipe.metrics.psnr import psnr
    from omnipipe.nn.errors import InputShapeError
    from omnipipe.vtok import load_tokenizer

    model = load_tokenizer(args.checkpoint, device=args.device)
    resolution = resolution_of(args.resolution, model)
    for path in args.inputs:
        pixels = read_media(path, model, resolution, args.frames, args.fps).to(args.device)
        try:
            with torch.inference_mode():
                recon = model(pixels).reconstruction
        except InputShapeError as error:
            raise InputShapeError(f"{path}: {error}") from None
        frames = side_by_side(pixels[0], recon[0])
        if pixels.shape[2] == 1:
            target = args.out / f"{path.stem}.png"
            write_png(target, frames[0], scale=1)
        else:
            target = args.out / f"{path.stem}.mp4"
            write_clip(target, frames, fps=round(args.fps), scale=1)
        print(f"{target}: PSNR {psnr(recon, pixels).item():.2f} dB ({pixels.shape[2]} frames, {resolution[0]}×{resolution[1]})")
    return 0
