"""``omnipipe tokenize``: a folder of images/videos → token shards and an index (for generators or LMs)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from omnipipe.commands.device import checked_device
from omnipipe.commands.media_args import add_media_arguments, chunk_of, fps_of, frames_of, resolution_of
from omnipipe.errors import OmnipipeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenize", help="turn a folder of media into token shards")
    parser.add_argument("--checkpoint", required=True, type=Path, help="a stage's model.safetensors (OmniTokenizer or VTok)")
    parser.add_argument("--input", required=True, type=Path, help="folder of images and videos (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the shards and index.json")
    add_media_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnipipe.evaluate.token_shards import tokenize_folder
    from omnipipe.train.distributed import init_distributed
    from omnipipe.vtok import load_tokenizer

    if not args.input.is_dir():
        raise OmnipipeError(f"--input {args.input}: folder not found")
    device = checked_device(args.device)
    ctx = init_distributed(device) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None  # torchrun: ranks share the files
    device = device if ctx is None else ctx.device
    model = load_tokenizer(args.checkpoint, device=device)
    resolution, frames = resolution_of(args.resolution, model), frames_of(args.frames, model)

    def report(path: str, reason: str) -> None:
        tqdm.write(f"omnipipe: skipped {args.input / path}: {reason}", file=sys.stderr)

    index = tokenize_folder(model, args.input, args.out, resolution, frames, fps_of(args.fps), device, report,
                            chunk=chunk_of(args.chunk, model), ctx=ctx)  # fmt: skip
    shards = sorted({entry["shard"] for entry in index["files"]})
    skipped = f", {len(index['skipped'])} skipped (listed in index.json)" if index["skipped"] else ""
    if not index["files"]:
        raise OmnipipeError(f"--input {args.input}: no media file could be tokenized{skipped}")
    print(f"{len(index['files'])} files → {len(shards)} shards in {args.out} ({', '.join(shards)}){skipped}")
    return 0
