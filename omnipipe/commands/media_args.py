"""Command-line options shared by the commands that read media files with a trained tokenizer."""
from __future__ import annotations

import argparse

from omnipipe.commands.device import add_device_argument
from omnipipe.errors import OmnipipeError
from omnipipe.nn.tokenizer import Tokenizer


def add_media_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolution", default="256x256", help="HxW the media are resized and cropped to")
    parser.add_argument("--frames", default="17", help="frames per video (rounded down to 1 + k·pt), or 'all'")
    parser.add_argument("--fps", type=float, default=8.0, help="videos are resampled to this frame rate")
    parser.add_argument(
        "--chunk", type=int, default=4,
        help="videos are encoded and decoded this many latent frames at a time, in memory that does not grow with "
        "their length, when the tokenizer allows it (causal in time); 0: whole clips",
    )  # fmt: skip
    add_device_argument(parser)


def resolution_of(text: str, model: Tokenizer) -> tuple[int, int]:
    """``"HxW"`` as (H, W), checked against the tokenizer's patch size."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise OmnipipeError(f"--resolution {text!r}: expected HxW, e.g. 256x256") from None
    patch = getattr(model.patchifier.params, "patch_size", 1)
    if height <= 0 or width <= 0 or height % patch or width % patch:
        raise OmnipipeError(f"--resolution {text}: height and width must be positive multiples of the patch size {patch}")
    return height, width


def frames_of(wanted: str, model: Tokenizer) -> int | None:
    """The video clip length for ``--frames wanted``: rounded down to 1 + k·pt, at least one temporal patch;
    None for ``all`` (every frame of each video, cut to whole tubes).

    Fewer would turn every video into a single frame (an image), so that is refused.
    """
    if wanted.strip().lower() == "all":
        return None
    try:
        count = int(wanted)
    except ValueError:
        raise OmnipipeError(f"--frames {wanted}: expected a number of frames or 'all'") from None
    tube = getattr(model.patchifier.params, "temporal_patch_size", 1)
    if count < 1 + tube:
        raise OmnipipeError(
            f"--frames {count}: a video clip needs at least {1 + tube} frames with this tokenizer (1 + k·{tube}); "
            "images are always one frame"
        )
    return 1 + (count - 1) // tube * tube


def chunk_of(chunk: int, model: Tokenizer) -> int | None:
    """Latent frames per streamed chunk for ``--chunk``; None (whole clips) for 0 or a tokenizer that cannot stream."""
    from omnipipe.nn.streaming import streaming_chunk

    if chunk < 0:
        raise OmnipipeError(f"--chunk {chunk}: expected a number of latent frames, or 0 for whole clips")
    return streaming_chunk(model, chunk or None)


def fps_of(fps: float) -> float:
    if not 0 < fps < float("inf"):
        raise OmnipipeError(f"--fps {fps:g}: expected a positive frame rate")
    return fps
