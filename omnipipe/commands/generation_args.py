"""Arguments the generation commands share: the spec, a ``generate`` entry by name, the device."""
from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from omnipipe.errors import SpecError
from omnipipe.suggest import did_you_mean


def add_spec_arguments(parser: argparse.ArgumentParser, entry: str, what: str) -> None:
    parser.add_argument("--spec", required=True, help="experiment spec (YAML)")
    parser.add_argument(f"--{entry}", required=True, help=what)
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda (default: CUDA when available)")


def entry_named(spec_path: str, section: str, entries: Mapping[str, Any], name: str) -> str:
    """``name`` when it is a key of ``entries`` (the spec's ``section``), else one SpecError line."""
    if name not in entries:
        known = ", ".join(entries) or "none"
        raise SpecError(f"{spec_path}: no '{name}' in {section} ({known}){did_you_mean(name, entries)}")
    return name
