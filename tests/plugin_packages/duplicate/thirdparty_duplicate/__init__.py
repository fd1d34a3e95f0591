"""A plugin that registers a name a builtin already uses."""
import omnipipe
from omnipipe.losses.pixel import L1Loss


@omnipipe.hookimpl
def omnipipe_register(registry: omnipipe.Registry) -> None:
    registry.add("loss", "l1", L1Loss)
