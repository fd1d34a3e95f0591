"""``omnipipe evaluate``: every evaluated tokenizer next to the bicubic baseline on the val split, in one report.

Samples are grouped by kind and resolution (``image-32x32``, ``clip-32x48``): within a group every sample
is a distinct val image or clip, which is what the counts and the bootstrap intervals assume.
"""
from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from omnipipe.atomic import atomic_write, write_csv, write_json
from omnipipe.data.loader import make_loader
from omnipipe.data.shards import PreparedIndex
from omnipipe.evaluate.baseline import bicubic_round_trip
from omnipipe.evaluate.stages import checkpoint_identity, evaluated_stages
from omnipipe.evaluate.summary import summary_markdown
from omnipipe.evaluate.visuals import side_by_side, write_clip, write_grid
from omnipipe.metrics.base import EvalBatch, Metric, MetricUnavailable
from omnipipe.metrics.bootstrap import CONFIDENCE, draw_resamples, mean_replicates, percentile_interval
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec
from omnipipe.train.paths import StagePaths

BASELINE = "baseline_bicubic"


@dataclass
class EvaluationPaths:
    """``<outputs.dir>/<name>/evaluate/``: metrics.json (numbers only, for DVC), report.json (everything), per_sample.csv,
    summary.md, grids/, videos/."""

    root: Path

    @classmethod
    def of(cls, spec: Experiment) -> EvaluationPaths:
        return cls(Path(spec.outputs.dir) / spec.name / "evaluate")

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def per_sample(self) -> Path:
        return self.root / "per_sample.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.md"

    @property
    def grids(self) -> Path:
        return self.root / "grids"

    @property
    def videos(self) -> Path:
        return self.root / "videos"


@dataclass
class MetricSets:
    """A fresh instance of every metric per version and group, built when the group first appears."""

    spec: Experiment
    registry: Registry
    device: torch.device
    versions: list[str]
    sets: dict[tuple[str, str], list[Metric]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)

    def of(self, version: str, group: str) -> list[Metric]:
        if (version, group) not in self.sets:
            for v in self.versions:
                self.sets[(v, group)] = []
            for entry in self.spec.evaluate.metrics:
                if entry.type in self.unavailable:
                    continue
                try:
                    built = [self.registry.build("metric", entry, allow_proxy=self.spec.evaluate.allow_proxy, device=self.device)
                             for _ in self.versions]  # fmt: skip
                except MetricUnavailable as error:
                    self.unavailable[entry.type] = str(error)
                    continue
                self.descriptions.setdefault(entry.type, getattr(built[0], "description", "not stated by the metric"))
                for v, metric in zip(self.versions, built):
                    self.sets[(v, group)].append(metric)
        return self.sets[(version, group)]


@dataclass
class Visuals:
    """The first samples of each group, kept for pictures (images) and videos (clips): target | versions… ."""

    limit: int
    images: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    clips: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))

    def keep(self, group: str, target: torch.Tensor, versions: list[torch.Tensor]) -> None:
        for i in range(target.shape[0]):
            kept = self.images if target.shape[2] == 1 else self.clips
            if len(kept[group]) < self.limit:
                row = side_by_side(target[i], *(v[i] for v in versions))
                kept[group].append(row[0] if target.shape[2] == 1 else row)


def group_of(pixels: torch.Tensor) -> str:
    """``image-HxW`` or ``clip-HxW`` for a batch ``(B, C, T, H, W)``."""
    return f"{'image' if pixels.shape[2] == 1 else 'clip'}-{pixels.shape[3]}x{pixels.shape[4]}"


def skipped_labels(classes: list[str], patterns: list[str]) -> torch.Tensor:
    """The class indices whose names match any of ``patterns`` (int64)."""
    return torch.tensor([i for i, name in enumerate(classes) if any(fnmatch.fnmatchcase(name, p) for p in patterns)], dtype=torch.int64)


def evaluate(spec: Experiment, registry: Registry, stage: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Evaluate the stages' tokenizers (``evaluated_stages``) and the baseline on the val split; write every output."""
    settings = spec.evaluate
    stages = evaluated_stages(spec, stage)
    torch_device = torch.device(device)
    models = {name: Tokenizer.from_checkpoint(StagePaths.of(spec, name).model_file, registry, torch_device) for name in stages}
    patch = getattr(next(iter(models.values())).patchifier.params, "patch_size", 1)
    versions = [*stages, BASELINE]
    metrics = MetricSets(spec, registry, torch_device, versions)
    resolutions = [list(r) for r in settings.resolutions] if settings.resolutions else None
    loader = make_loader(spec, StageSpec(data="joint", steps=1, batch_size=settings.batch_size, resolutions=resolutions), split="val")
    visuals = Visuals(settings.visual_samples)
    skipped = skipped_labels(PreparedIndex.load(spec.data.prepared_dir).classes, settings.skip_classes)
    rows: list[dict[str, Any]] = []
    per_sample: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (version, group, key) → values
    counts: dict[str, int] = defaultdict(int)
    frames: dict[str, int] = {}
    for batch in tqdm(loader, desc=f"evaluate {', '.join(stages)}", unit="batch"):
        if settings.max_samples is not None and len(rows) >= settings.max_samples:
            break
        keep = ~torch.isin(batch.labels, skipped)
        if not keep.any():
            continue
        target, labels = batch.pixels[keep].to(torch_device), batch.labels[keep]
        group = group_of(target)
        shared: dict[str, torch.Tensor] = {}  # the targets' features, computed once for every version
        with torch.inference_mode():
            outputs = {name: model(target) for name, model in models.items()}
            base = bicubic_round_trip(target, (target.shape[3] // patch, target.shape[4] // patch))
        batches = {name: EvalBatch(target, out.reconstruction, out.quantizer, models[name].quantizer.codebook_size, shared)
                   for name, out in outputs.items()}  # fmt: skip
        batches[BASELINE] = EvalBatch(target, base, None, None, shared)
        new_rows = [{"sample": len(rows) + i, "group": group, "index": counts[group] + i, "label": int(labels[i])}
                    for i in range(target.shape[0])]  # fmt: skip
        for version, eval_batch in batches.items():
            for metric in metrics.of(version, group):
                values = metric.update(eval_batch)
                if values is not None:
                    per_sample[(version, group, metric.per_sample_key)] += values.tolist()
                    for row, value in zip(new_rows, values.tolist()):
                        row[f"{version}_{metric.per_sample_key}"] = value
        rows.extend(new_rows)
        counts[group] += target.shape[0]
        frames[group] = target.shape[2]
        visuals.keep(group, target, [out.reconstruction for out in outputs.values()] + [base])
    results: dict[str, Any] = {
        "stages": {name: checkpoint_identity(spec, name) for name in stages},
        "samples": {group: {"distinct": count, "frames_each": frames[group]} for group, count in counts.items()},
    }
    for version in versions:
        results[version] = {group: _compute(metrics.of(version, group)) for group in counts}
    results["intervals"] = _intervals(metrics, versions, counts, per_sample, settings.bootstrap, spec.seed)
    results["bootstrap"] = {"resamples": settings.bootstrap, "confidence": CONFIDENCE, "unit": "distinct val sample"}
    results["networks"] = metrics.descriptions
    results["unavailable"] = metrics.unavailable
    _write(EvaluationPaths.of(spec), results, rows, visuals, spec, versions)
    return results


def _compute(metrics: list[Metric]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in metrics:
        out.update(metric.compute())
    return out


def _intervals(
    metrics: MetricSets, versions: list[str], counts: dict[str, int], per_sample: dict[tuple[str, str, str], list[float]],
    replicates: int, seed: int,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """95 % percentile intervals per version, group and metric, from the same resamples of each group's samples."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {version: {} for version in versions}
    if replicates == 0:
        return out
    for number, (group, count) in enumerate(sorted(counts.items())):
        resamples = draw_resamples(count, replicates, seed + number)
        for version in versions:
            found: dict[str, np.ndarray] = {}
            for metric in metrics.of(version, group):
                if metric.per_sample_key is not None:
                    found[metric.per_sample_key] = mean_replicates(np.array(per_sample[(version, group, metric.per_sample_key)]), resamples)
                elif hasattr(metric, "bootstrap"):
                    found.update(metric.bootstrap(resamples))
            intervals = {key: percentile_interval(values) for key, values in found.items()}
            out[version][group] = {key: interval for key, interval in intervals.items() if interval is not None}
    return out


def _write(paths: EvaluationPaths, results: dict[str, Any], rows: list[dict[str, Any]], visuals: Visuals, spec: Experiment,
           versions: list[str]) -> None:  # fmt: skip
    write_json(paths.report, results)
    write_json(paths.metrics, {key: results[key] for key in ("samples", *versions)})  # numbers only: `dvc metrics show`
    write_csv(paths.per_sample, rows)
    for group, pictures in visuals.images.items():
        write_grid(paths.grids / f"{group}.png", pictures)
    for group, clips in visuals.clips.items():
        for number, clip in enumerate(clips):
            write_clip(paths.videos / f"{group}-{number:02d}.mp4", clip, fps=max(1, round(spec.data.fps)))
    markdown = summary_markdown(results, spec.name, versions)
    atomic_write(paths.summary, lambda file: file.write(markdown.encode("utf-8")))
