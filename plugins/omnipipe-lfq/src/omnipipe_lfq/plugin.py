"""The entry point module (``[project.entry-points.omnipipe] lfq = "omnipipe_lfq.plugin"``)."""
from __future__ import annotations

import omnipipe
from omnipipe_lfq.lfq import LookupFreeQuantizer


@omnipipe.hookimpl
def omnipipe_register(registry: omnipipe.Registry) -> None:
    registry.add("quantizer", "lfq", LookupFreeQuantizer)
