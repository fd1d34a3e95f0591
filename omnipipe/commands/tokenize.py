"""``omnipipe tokenize``: a folder of images/videos → token shards and an index (for generators or LMs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from omnipipe.commands.media_args import add_media_arguments, resolution_of
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
    from omnipipe.vtok import load_tokenizer

    if not args.input.is_dir():
        raise OmnipipeError(f"--input {args.input}: folder not found")
    model = load_tokenizer(args.checkpoint, device=args.device)
    resolution = resolution_of(args.resolution, model)
    index = tokenize_folder(model, args.input, args.out, resolution, args.frames, args.fps, args.device)
    shards = sorted({entry["shard"] for entry in index["files"]})
    print(f"{len(index['files'])} files → {len(shards)} shards in {args.out} ({', '.join(shards)})")
    return 0
