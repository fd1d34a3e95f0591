"""The entry point module (``[project.entry-points.omnipipe] fsq = "omnipipe_fsq.plugin"``)."""
from __future__ import annotations

import omnipipe
from omnipipe_fsq.fsq import FiniteScalarQuantizer


@omnipipe.hookimpl
def omnipipe_register(registry: omnipipe.Registry) -> None:
    registry.add("quantizer", "fsq", FiniteScalarQuantizer)
