"""The pipelines' dvc.yaml files against the spec they run: every tracked parameter exists (DVC refuses a stage
otherwise), and each stage runs in the repository root."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PIPELINES = [REPO / "dvc.yaml", REPO / "pipelines" / "extended" / "dvc.yaml"]  # the default `dvc repro`, then the rest


def _has(tree: object, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def _stages() -> dict[str, dict]:
    return {f"{path.relative_to(REPO)}:{name}": stage for path in PIPELINES
            for name, stage in yaml.safe_load(path.read_text())["stages"].items()}  # fmt: skip


def test_every_tracked_parameter_is_in_its_spec() -> None:
    missing = []
    for name, stage in _stages().items():
        for entry in stage.get("params", []):
            for file, keys in (entry.items() if isinstance(entry, dict) else [("params.yaml", [entry])]):
                spec = yaml.safe_load((REPO / file).read_text())
                missing += [f"{name}: {file}:{key}" for key in keys if not _has(spec, key)]
    assert not missing, missing
    assert _has({"a": {"b": 1}}, "a.b") and not _has({"a": {"b": 1}}, "a.c")


def test_every_stage_runs_in_the_repository_root_and_names_are_unique() -> None:
    stages = _stages()
    for name, stage in stages.items():
        where = (REPO / name.split(":")[0]).parent / stage.get("wdir", ".")
        assert where.resolve() == REPO, f"{name}: wdir {stage.get('wdir')}"
    names = [name.split(":")[1] for name in stages]
    assert len(names) == len(set(names))
