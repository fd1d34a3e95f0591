"""Start a stage from an earlier one: copy matching weights, inflate the temporal patch embedding,
re-initialise the bottleneck when the stage swaps it (VQ → KL)."""
from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from omnipipe.errors import OmnipipeError
from omnipipe.nn.tokenizer import Tokenizer


def initialise_from(model: Tokenizer, checkpoint: Path, *, inflate_temporal: bool, keep_quantizer: bool) -> list[str]:
    """Load ``checkpoint``'s weights into ``model``; returns the names left at their fresh initialisation."""
    if not checkpoint.is_file():
        raise OmnipipeError(f"{checkpoint}: the earlier stage's model is missing; run that stage first")
    source = load_file(str(checkpoint))
    if not keep_quantizer:
        source = {name: value for name, value in source.items() if not name.startswith("quantizer.")}
    own = model.state_dict()
    loaded = {name: value for name, value in source.items() if name in own and own[name].shape == value.shape}
    model.load_state_dict(loaded, strict=False)
    if inflate_temporal:
        inflate = getattr(model.patchifier, "inflate_temporal_from_image", None)
        if inflate is not None:
            inflate()
    return sorted(set(own) - set(loaded))


def stage_is_video_start(previous_data: str, data: str) -> bool:
    """The temporal patch weights are inflated when a stage with clips follows an images-only one."""
    return previous_data == "images" and data != "images"
