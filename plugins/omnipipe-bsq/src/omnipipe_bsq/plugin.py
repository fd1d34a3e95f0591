"""The entry point module (``[project.entry-points.omnipipe] bsq = "omnipipe_bsq.plugin"``)."""
from __future__ import annotations

import omnipipe
from omnipipe_bsq.bsq import BinarySphericalQuantizer


@omnipipe.hookimpl
def omnipipe_register(registry: omnipipe.Registry) -> None:
    registry.add("quantizer", "bsq", BinarySphericalQuantizer)
