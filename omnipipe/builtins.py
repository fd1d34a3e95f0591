"""The builtin components, registered through the same entry-point hook as any third-party plugin."""
from __future__ import annotations

from omnipipe.data.components import register as register_datasets
from omnipipe.generate.components import register as register_generators
from omnipipe.hooks import hookimpl
from omnipipe.losses.components import register as register_losses
from omnipipe.losses.pixel import L1Loss, L2Loss
from omnipipe.metrics.components import register as register_metrics
from omnipipe.nn.components import register as register_networks
from omnipipe.registry import Registry


@hookimpl
def omnipipe_register(registry: Registry) -> None:
    registry.add("loss", "l1", L1Loss)
    registry.add("loss", "l2", L2Loss)
    register_losses(registry)
    register_networks(registry)
    register_datasets(registry)
    register_metrics(registry)
    register_generators(registry)
