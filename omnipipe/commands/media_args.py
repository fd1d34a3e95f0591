"""Command-line options shared by the commands that read media files with a trained tokenizer."""
from __future__ import annotations

import argparse

from omnipipe.commands.device import add_device_argument
from omnipipe.errors import OmnipipeError
from omnipipe.nn.tokenizer import Tokenizer


def add_media_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolution", default="256x256", help="HxW the media are resized and cropped to")
    parser.add_argument("--frames", type=int, default=17, help="frames per video (rounded down to 1 + k·pt)")
    parser.add_argument("--fps", type=float, default=8.0, help="videos are resampled to this frame rate")
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


def frames_of(wanted: int, model: Tokenizer) -> int:
    """The video clip length for ``--frames wanted``: rounded down to 1 + k·pt, at least one temporal patch.

    Fewer would turn every video into a single frame (an image), so that is refused.
    """
    tube = getattr(model.patchifier.params, "temporal_patch_size", 1)
    if wanted < 1 + tube:
        raise OmnipipeError(
            f"--frames {wanted}: a video clip needs at least {1 + tube} frames with this tokenizer (1 + k·{tube}); "
            "images are always one frame"
        )
    return 1 + (wanted - 1) // tube * tube


def fps_of(fps: float) -> float:
    if not 0 < fps < float("inf"):
        raise OmnipipeError(f"--fps {fps:g}: expected a positive frame rate")
    return fps
