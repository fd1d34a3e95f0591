"""dvc.yaml against the spec it runs: every tracked parameter exists (DVC refuses a stage otherwise)."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _has(tree: object, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def test_every_tracked_parameter_is_in_its_spec() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    missing = []
    for name, stage in stages.items():
        for entry in stage.get("params", []):
            for file, keys in (entry.items() if isinstance(entry, dict) else [("params.yaml", [entry])]):
                spec = yaml.safe_load((REPO / file).read_text())
                missing += [f"{name}: {file}:{key}" for key in keys if not _has(spec, key)]
    assert not missing, missing
    assert _has({"a": {"b": 1}}, "a.b") and not _has({"a": {"b": 1}}, "a.c")
