"""Load plugins from the ``omnipipe`` entry-point group into a Registry.

``OMNIPIPE_DISABLE_PLUGINS`` (comma-separated entry-point or distribution names) leaves plugins out,
e.g. one that is broken; ``omnipipe components`` then shows what remains.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

import pluggy

from omnipipe.errors import OmnipipeError, PluginError
from omnipipe.hooks import PROJECT, Hooks
from omnipipe.registry import Registry

ENTRY_POINT_GROUP = "omnipipe"
DISABLE_ENV = "OMNIPIPE_DISABLE_PLUGINS"


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from, for messages: entry-point name, distribution, target."""

    name: str
    distribution: str
    target: str

    def __str__(self) -> str:
        return f"plugin '{self.name}' (distribution {self.distribution}, entry point {self.target})"


def _source(entry_point: EntryPoint) -> PluginSource:
    dist = entry_point.dist
    distribution = f"{dist.name} {dist.version}" if dist is not None else "unknown"
    return PluginSource(entry_point.name, distribution, f"{ENTRY_POINT_GROUP}:{entry_point.value}")


def disabled_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def _hint(source: PluginSource) -> str:
    return f"; run without it with {DISABLE_ENV}={source.name}"


def load_registry() -> Registry:
    """A fresh Registry holding every enabled installed plugin's components."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(Hooks)
    disabled = disabled_plugins()
    sources: dict[str, PluginSource] = {}
    seen: set[str] = set()
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        source = _source(entry_point)
        dist_name = entry_point.dist.name if entry_point.dist is not None else ""
        if entry_point.name in seen or entry_point.name in disabled or dist_name in disabled:
            continue  # the same distribution can be visible twice on sys.path; the first wins
        seen.add(entry_point.name)
        try:
            module = entry_point.load()
        except Exception as error:  # noqa: BLE001 - any import failure is the plugin's, reported as such
            raise PluginError(f"{source} failed to import: {type(error).__name__}: {error}{_hint(source)}") from error
        try:
            manager.register(module, name=entry_point.name)
            manager.check_pending()
        except pluggy.PluginValidationError as error:
            manager.unregister(name=entry_point.name)
            raise PluginError(f"{source}: {error}{_hint(source)}") from None
        sources[entry_point.name] = source
    registry = Registry()
    for hook in manager.hook.omnipipe_register.get_hookimpls():
        source = sources[hook.plugin_name]
        with registry.providing(f"{source.name} ({source.distribution})"):
            try:
                hook.function(**({"registry": registry} if "registry" in hook.argnames else {}))
            except OmnipipeError as error:
                raise PluginError(f"{source} failed to register: {error}{_hint(source)}") from error
            except Exception as error:  # noqa: BLE001 - a failing hook is the plugin's error
                raise PluginError(f"{source} failed to register: {type(error).__name__}: {error}{_hint(source)}") from error
    return registry


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    return load_registry()
