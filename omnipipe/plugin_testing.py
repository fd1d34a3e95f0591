"""Helpers for a plugin distribution's own tests (public API, like ``numpy.testing``): needs pytest."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from omnipipe.plugins import ENTRY_POINT_GROUP, load_registry
from omnipipe.registry import Entry, Registry
from omnipipe.spec.loader import load_spec


def require_distribution(name: str) -> importlib.metadata.Distribution:
    """The installed distribution ``name``; the calling test is skipped, saying how to install it, when absent."""
    import pytest

    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"distribution {name} is not installed (pip install it); its entry point is needed here")


def registered_entry(registry: Registry, kind: str, name: str, distribution: str) -> Entry:
    """The registered component, after checking that the installed ``distribution`` provides it."""
    entry = registry.get(kind, name)
    dist = importlib.metadata.distribution(distribution)
    providers = {f"{ep_name} ({dist.name} {dist.version})" for ep_name, _ in declared_entry_points(dist)}
    assert entry.provider in providers, f"{kind} '{name}' comes from {entry.provider}, not from {distribution}"
    return entry


def quantizer_from_spec(spec_path: Path, registry: Registry | None = None) -> tuple[object, int]:
    """The quantizer a spec file describes, built as the tokenizer builds it, and its input width."""
    import pytest

    if not spec_path.exists():
        pytest.skip(f"{spec_path} is not in this checkout")
    registry = registry or load_registry()
    spec = load_spec(spec_path, registry)
    width = spec.model.encoder.width
    return registry.build("quantizer", spec.model.quantizer, dim=width), width


def declared_entry_points(distribution: importlib.metadata.Distribution) -> list[tuple[str, str]]:
    """``(name, target)`` of each entry point the distribution declares in omnipipe's group."""
    return [(ep.name, ep.value) for ep in distribution.entry_points if ep.group == ENTRY_POINT_GROUP]


def run_readme_examples(readme: Path) -> int:
    """Execute every ```python block of ``readme`` (tracebacks show README line numbers); returns how many ran."""
    text = readme.read_text(encoding="utf-8")
    blocks = list(re.finditer(r"```python\n(.*?)```", text, flags=re.S))
    for block in blocks:
        source = "\n" * text.count("\n", 0, block.start(1)) + block.group(1)
        exec(compile(source, str(readme), "exec"), {"__name__": "readme_example"})  # noqa: S102 - the package's own docs
    return len(blocks)
