"""Where the generation stages write: token datasets, and per generator its model, samples and evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnipipe.spec.experiment import Experiment


@dataclass(frozen=True)
class GenerationPaths:
    """``<outputs.dir>/<name>/tokens/<dataset>/`` and ``<outputs.dir>/<name>/generators/<generator>/…``."""

    root: Path

    @classmethod
    def of(cls, spec: Experiment) -> GenerationPaths:
        return cls(Path(spec.outputs.dir) / spec.name)

    def tokens(self, dataset: str) -> Path:
        """A token dataset's folder (``index.json`` and its shards): the encode stage's DVC output."""
        return self.root / "tokens" / dataset

    def generator(self, name: str) -> Path:
        return self.root / "generators" / name

    def model_file(self, name: str) -> Path:
        """The trained generator (weights, component spec and token layout): the train stage's DVC output."""
        return self.generator(name) / "model.safetensors"

    def live_dir(self, name: str) -> Path:
        return self.generator(name) / "live"

    def checkpoints(self, name: str) -> Path:
        return self.root / "checkpoints" / "generators" / name

    def samples(self, name: str) -> Path:
        """Sampled tokens, one sub-folder per sampling run: the sample stage's output."""
        return self.generator(name) / "samples"

    def pictures(self, name: str) -> Path:
        """``<run>.png`` grids (and ``<run>.gif`` for clips) of the samples: DVC plots."""
        return self.generator(name) / "pictures"

    def videos(self, name: str) -> Path:
        """``<run>/class-<c>.mp4`` of clip samples."""
        return self.generator(name) / "videos"

    def evaluation(self, name: str) -> Path:
        """``metrics.json`` and ``summary.md`` of the generation metrics."""
        return self.generator(name) / "evaluate"
