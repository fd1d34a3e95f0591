"""The plugin hook: every plugin (builtins included) implements ``omnipipe_register(registry)``."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from omnipipe.registry import Registry

PROJECT = "omnipipe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Hooks:
    """The hook specifications plugins may implement."""

    @hookspec
    def omnipipe_register(self, registry: Registry) -> None:
        """Add components with ``registry.add(kind, name, cls)``."""
