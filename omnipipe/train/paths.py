"""Where a training stage writes: its DVC outputs, its live metrics, its checkpoints."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnipipe.spec.experiment import Experiment


@dataclass(frozen=True)
class StagePaths:
    """``<outputs.dir>/<name>/<stage>/`` for outputs, ``<outputs.dir>/<name>/checkpoints/<stage>/`` for resume."""

    out_dir: Path
    checkpoints: Path

    @classmethod
    def of(cls, spec: Experiment, stage: str) -> StagePaths:
        root = Path(spec.outputs.dir) / spec.name
        return cls(out_dir=root / stage, checkpoints=root / "checkpoints" / stage)

    @property
    def model_file(self) -> Path:
        """The stage's final tokenizer (weights + spec metadata): its DVC output."""
        return self.out_dir / "model.safetensors"

    @property
    def live_dir(self) -> Path:
        """dvclive's folder: ``metrics.json`` (DVC metrics) and ``plots/`` (DVC plots)."""
        return self.out_dir / "live"
