"""``omnipipe evaluate``: a stage's tokenizer against the bicubic baseline on the val split."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from omnipipe.atomic import atomic_write, write_csv, write_json
from omnipipe.data.loader import make_loader
from omnipipe.evaluate.baseline import bicubic_round_trip
from omnipipe.evaluate.summary import summary_markdown
from omnipipe.evaluate.visuals import side_by_side, write_clip, write_grid
from omnipipe.metrics.base import EvalBatch, Metric, MetricUnavailable
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec
from omnipipe.train.paths import StagePaths

VERSIONS = ("tokenizer", "baseline_bicubic")
KINDS = ("image", "clip")


@dataclass
class EvaluationPaths:
    """``<outputs.dir>/<name>/evaluate/``: metrics.json, per_sample.csv, summary.md, grids/, videos/."""

    root: Path

    @classmethod
    def of(cls, spec: Experiment) -> EvaluationPaths:
        return cls(Path(spec.outputs.dir) / spec.name / "evaluate")

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

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
class Visuals:
    """The first samples of each kind and resolution, kept for pictures and videos."""

    limit: int
    images: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    clips: list[Any] = field(default_factory=list)

    def keep(self, target: torch.Tensor, recon: torch.Tensor, base: torch.Tensor) -> None:
        for i in range(target.shape[0]):
            row = side_by_side(target[i], recon[i], base[i])
            if target.shape[2] == 1:
                key = f"image-{target.shape[3]}x{target.shape[4]}"
                if len(self.images[key]) < self.limit:
                    self.images[key].append(row[0])
            elif len(self.clips) < self.limit:
                self.clips.append(row)


def build_metrics(spec: Experiment, registry: Registry, device: torch.device) -> tuple[dict[str, dict[str, list[Metric]]], dict[str, str]]:
    """A fresh instance of every metric per version and kind; the metrics that cannot run, with the reason."""
    sets: dict[str, dict[str, list[Metric]]] = {v: {k: [] for k in KINDS} for v in VERSIONS}
    unavailable: dict[str, str] = {}
    context = {"allow_proxy": spec.evaluate.allow_proxy, "device": device}
    for entry in spec.evaluate.metrics:
        try:
            built = {(v, k): registry.build("metric", entry, **context) for v in VERSIONS for k in KINDS}
        except MetricUnavailable as error:
            unavailable[entry.type] = str(error)
            continue
        for (version, kind), metric in built.items():
            sets[version][kind].append(metric)
    return sets, unavailable


def evaluate(spec: Experiment, registry: Registry, stage: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """Evaluate ``stage``'s model (default: ``evaluate.stage``, else the last stage); write every output."""
    settings = spec.evaluate
    stage = stage or settings.stage or list(spec.train.stages)[-1]
    torch_device = torch.device(device)
    model = Tokenizer.from_checkpoint(StagePaths.of(spec, stage).model_file, registry, torch_device)
    patch = getattr(model.patchifier.params, "patch_size", 1)
    sets, unavailable = build_metrics(spec, registry, torch_device)
    loader = make_loader(spec, StageSpec(data="joint", steps=1, batch_size=settings.batch_size), split="val")
    paths = EvaluationPaths.of(spec)
    visuals = Visuals(settings.visual_samples)
    rows: list[dict[str, Any]] = []
    counts = {kind: 0 for kind in KINDS}
    for batch in tqdm(loader, desc=f"evaluate {stage}", unit="batch"):
        if settings.max_samples is not None and len(rows) >= settings.max_samples:
            break
        target = batch.pixels.to(torch_device)
        kind = "image" if target.shape[2] == 1 else "clip"
        with torch.inference_mode():
            out = model(target)
            base = bicubic_round_trip(target, (target.shape[3] // patch, target.shape[4] // patch))
        versions = {
            "tokenizer": EvalBatch(target, out.reconstruction, out.quantizer, model.quantizer.codebook_size),
            "baseline_bicubic": EvalBatch(target, base, None, None),
        }
        new_rows = [
            {"sample": len(rows) + i, "kind": kind, "frames": target.shape[2], "height": target.shape[3],
             "width": target.shape[4], "label": int(batch.labels[i])}
            for i in range(target.shape[0])
        ]  # fmt: skip
        for version, eval_batch in versions.items():
            for metric in sets[version][kind]:
                values = metric.update(eval_batch)
                if values is not None:
                    prefix = "" if version == "tokenizer" else "baseline_"
                    for row, value in zip(new_rows, values.tolist()):
                        row[prefix + metric.per_sample_key] = value
        rows.extend(new_rows)
        counts[kind] += target.shape[0]
        visuals.keep(target, out.reconstruction, base)
    results: dict[str, Any] = {"stage": stage, "samples": counts}
    for version in VERSIONS:
        results[version] = {kind: _compute(sets[version][kind]) for kind in KINDS if counts[kind]}
    results["unavailable"] = unavailable
    _write(paths, results, rows, visuals, spec)
    return results


def _compute(metrics: list[Metric]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in metrics:
        out.update(metric.compute())
    return out


def _write(paths: EvaluationPaths, results: dict[str, Any], rows: list[dict[str, Any]], visuals: Visuals, spec: Experiment) -> None:
    write_json(paths.metrics, results)
    write_csv(paths.per_sample, rows)
    for name, pictures in visuals.images.items():
        write_grid(paths.grids / f"{name}.png", pictures)
    for number, clip in enumerate(visuals.clips):
        write_clip(paths.videos / f"clip-{number:02d}.mp4", clip, fps=max(1, round(spec.data.fps)))
    markdown = summary_markdown(results, spec.name)
    atomic_write(paths.summary, lambda file: file.write(markdown.encode("utf-8")))
