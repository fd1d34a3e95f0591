"""The builtin components, registered through the same entry-point hook as any third-party plugin."""
from __future__ import annotations

from omnipipe.hooks import hookimpl
from omnipipe.losses.pixel import L1Loss, L2Loss
from omnipipe.registry import Registry


@hookimpl
def omnipipe_register(registry: Registry) -> None:
    registry.add("loss", "l1", L1Loss)
    registry.add("loss", "l2", L2Loss)
