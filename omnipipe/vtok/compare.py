"""``omnipipe compare-vtok``: a VTok tokenizer next to its plain OmniTokenizer on the val clips.

Four reconstructions of every val clip, judged on the *later* frames (frame 0 is the key frame's
reconstruction in every one):

- ``vtok``: from the key frame's N tokens and the U residual tokens (N + U tokens);
- ``plain``: the plain OmniTokenizer from all its tokens (N·T');
- ``key_held``: the key frame's reconstruction held for every frame (N tokens) — what residual tokens
  that carried no change would give, the floor VTok has to beat to show that its residuals carry motion;
- ``unit_latents``: VTok's decoding path fed every later unit's own OmniTokenizer latents instead of the
  predicted ones (N tokens per unit) — the ceiling a perfect predictor would reach.

Writes ``<outputs>/<name>/<vtok>/compare/``: ``metrics.json``, ``per_clip.csv``, ``summary.md``,
``frames.png`` (per clip four rows of frames: target, plain, vtok, key held) and side-by-side mp4s under ``videos/``.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from omnipipe.atomic import atomic_write, write_csv, write_json
from omnipipe.data.loader import make_loader
from omnipipe.data.shards import PreparedIndex
from omnipipe.evaluate.visuals import side_by_side, write_clip, write_grid
from omnipipe.metrics.base import EvalBatch, Metric, MetricUnavailable
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec
from omnipipe.train.paths import StagePaths
from omnipipe.vtok.model import VTok
from omnipipe.vtok.motion import position_error
from omnipipe.vtok.units import decode_units

VERSIONS = ("vtok", "plain", "key_held", "unit_latents")
HEADERS = "VTok | plain | key frame held | own latents (ceiling)"


@dataclass(frozen=True)
class ComparePaths:
    root: Path

    @classmethod
    def of(cls, spec: Experiment, name: str) -> ComparePaths:
        return cls(StagePaths.of(spec, name).out_dir / "compare")

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"


def token_budget(vtok: VTok, plain: Tokenizer, frames: int, resolution: tuple[int, int]) -> dict[str, Any]:
    """Tokens and bits per clip of ``frames`` frames at ``resolution``: VTok's N + U against the plain N·T'."""
    grid = plain.patchifier.latent_grid(frames, *resolution)
    key_tokens, units = grid[1] * grid[2], vtok.units(frames)
    sizes = (plain.quantizer.codebook_size, vtok.residual_quantizer.codebook_size)
    budget: dict[str, Any] = {"frames": frames, "grid": list(grid), "vtok_tokens": key_tokens + units,
                              "vtok_key_tokens": key_tokens, "vtok_residual_tokens": units,
                              "plain_tokens": math.prod(grid)}  # fmt: skip
    if None not in sizes:
        budget["vtok_bits"] = key_tokens * math.log2(sizes[0]) + units * math.log2(sizes[1])
        budget["plain_bits"] = math.prod(grid) * math.log2(sizes[0])
    return budget


def motion_labels(spec: Experiment, patterns: list[str]) -> set[int]:
    """Label indices of the prepared classes that match ``patterns`` (objects whose position is measured)."""
    classes = PreparedIndex.load(spec.data.prepared_dir).classes
    return {index for index, name in enumerate(classes) if any(fnmatch.fnmatchcase(name, p) for p in patterns)}


def build_metric_sets(spec: Experiment, name: str, registry: Registry, device: torch.device) -> tuple[dict[str, list[Metric]], dict[str, str]]:
    """A fresh instance of every compare metric per version; the metrics that cannot run, with the reason."""
    settings = spec.vtok[name].compare
    sets: dict[str, list[Metric]] = {version: [] for version in VERSIONS}
    unavailable: dict[str, str] = {}
    for entry in settings.metrics:
        try:
            built = {v: registry.build("metric", entry, allow_proxy=settings.allow_proxy, device=device) for v in VERSIONS}
        except MetricUnavailable as error:
            unavailable[entry.type] = str(error)
            continue
        for version, metric in built.items():
            if version in ("vtok", "plain") or metric.per_sample_key is not None:  # set-level ones (FVD) cost I3D passes
                sets[version].append(metric)
    return sets, unavailable


@torch.inference_mode()
def compare_vtok(spec: Experiment, name: str, registry: Registry, device: str = "cpu") -> dict[str, Any]:
    """Reconstruct every val clip three ways (see the module doc), measure, write every output; the results."""
    entry, torch_device = spec.vtok[name], torch.device(device)
    vtok = VTok.from_checkpoint(StagePaths.of(spec, name).model_file, registry, torch_device)
    plain = Tokenizer.from_checkpoint(StagePaths.of(spec, entry.tokenizer).model_file, registry, torch_device)
    sets, unavailable = build_metric_sets(spec, name, registry, torch_device)
    moving = motion_labels(spec, entry.compare.motion_classes)
    stage = StageSpec(data="videos", steps=1, batch_size=entry.compare.batch_size, resolutions=entry.train.resolutions)
    rows: list[dict[str, Any]] = []
    budgets: dict[str, dict[str, Any]] = {}
    shown: tuple[list[list[torch.Tensor]], ...] = ([], [])  # other, moving; per clip: target, plain, vtok, key held
    residual_codes: list[torch.Tensor] = []
    for batch in tqdm(make_loader(spec, stage, split="val"), desc=f"compare {name}", unit="batch"):
        target = batch.pixels.to(torch_device)  # (B, C, T, H, W)
        frames, resolution = target.shape[2], (target.shape[3], target.shape[4])
        budgets.setdefault(f"{resolution[0]}x{resolution[1]}", token_budget(vtok, plain, frames, resolution))
        out = vtok(target)
        if out.residual.codes is not None:
            residual_codes.append(out.residual.codes.flatten()[1:].cpu())  # row 0 is the no-change residual
        versions = {"vtok": out.reconstruction, "plain": plain(target).reconstruction}
        versions["key_held"] = versions["vtok"][:, :, :1].expand_as(target)
        versions["unit_latents"] = decode_units(vtok.spec.residual_unit, vtok.base, out.key.z_q)
        new_rows = [{"clip": len(rows) + i, "label": int(batch.labels[i]), "height": resolution[0], "width": resolution[1]}
                    for i in range(target.shape[0])]  # fmt: skip
        is_moving = torch.tensor([int(label) in moving for label in batch.labels])
        for version, recon in versions.items():
            later = EvalBatch(target[:, :, 1:], recon[:, :, 1:], None, None)
            for metric in sets[version]:
                values = metric.update(later)
                if values is not None:
                    for row, value in zip(new_rows, values.tolist()):
                        row[f"{version}_{metric.per_sample_key}"] = value
            errors = position_error(recon[:, :, 1:], target[:, :, 1:]).cpu()
            for row, error, flag in zip(new_rows, errors.tolist(), is_moving.tolist()):
                if flag:
                    row[f"{version}_position_error_px"] = error
        rows.extend(new_rows)
        for i, flag in enumerate(is_moving.tolist()):  # half the pictures from moving objects, half from the rest
            group = shown[bool(flag)]
            if len(group) < (entry.compare.visual_samples + 1 - bool(flag)) // 2:
                group.append([target[i], versions["plain"][i], versions["vtok"][i], versions["key_held"][i]])
    results = _results(sets, rows, budgets, unavailable, residual_codes, vtok, name, entry.tokenizer)
    _write(ComparePaths.of(spec, name), results, rows, shown[1] + shown[0], spec.data.fps)
    return results


def _results(
    sets: dict[str, list[Metric]], rows: list[dict[str, Any]], budgets: dict[str, Any], unavailable: dict[str, str],
    residual_codes: list[torch.Tensor], vtok: VTok, name: str, tokenizer: str,
) -> dict[str, Any]:  # fmt: skip
    moving = [row for row in rows if "vtok_position_error_px" in row]
    groups = {"moving": moving, "other": [row for row in rows if "vtok_position_error_px" not in row]}
    results: dict[str, Any] = {
        "name": name, "tokenizer": tokenizer, "residual_unit": vtok.spec.residual_unit,
        "clips": len(rows), "moving_clips": len(moving), "tokens": budgets, "unavailable": unavailable,
        "by_group": {group: {version: {} for version in VERSIONS} for group, members in groups.items() if members},
    }  # fmt: skip
    for version in VERSIONS:
        values: dict[str, float] = {}
        for metric in sets[version]:
            values.update(metric.compute())
            key = metric.per_sample_key
            for group, members in groups.items():
                if members and key is not None:
                    results["by_group"][group][version][key] = column_mean(members, f"{version}_{key}")
        if moving:
            values["position_error_px"] = column_mean(moving, f"{version}_position_error_px")
        results[version] = values
    if residual_codes:
        codes = torch.cat(residual_codes)
        results["residual_codes_used"] = int(codes.unique().numel())
        results["residual_codebook_size"] = vtok.residual_quantizer.codebook_size
    return results


def column_mean(rows: list[dict[str, Any]], key: str) -> float:
    """The mean of ``key`` over ``rows``, NaN values left out (NaN when none is left)."""
    values = np.array([row[key] for row in rows], dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def frame_row(clip: torch.Tensor) -> np.ndarray:
    """A clip (C, T, H, W) as one row of its frames, uint8 (H, T·W + gaps, 3)."""
    return side_by_side(*clip.split(1, dim=1))[0]


def _write(
    paths: ComparePaths, results: dict[str, Any], rows: list[dict[str, Any]], shown: list[list[torch.Tensor]], fps: float
) -> None:
    write_json(paths.metrics, results)
    write_csv(paths.root / "per_clip.csv", rows)
    if shown:
        strips = [frame_row(version) for clip in shown for version in clip]
        write_grid(paths.root / "frames.png", strips, scale=3)
        for number, clip in enumerate(shown):
            write_clip(paths.root / "videos" / f"clip-{number:02d}.mp4", side_by_side(*clip), fps=max(1, round(fps)))
    summary = summary_markdown(results)
    atomic_write(paths.root / "summary.md", lambda file: file.write(summary.encode("utf-8")))


def summary_markdown(results: dict[str, Any]) -> str:
    """The comparison as markdown: token budgets, then each measure for the three versions."""
    lines = [f"# VTok `{results['name']}` vs the plain tokenizer `{results['tokenizer']}` on {results['clips']} val clips",
             "", "| resolution | frames | VTok tokens (N + U) | plain tokens (N·T') |", "| --- | --- | --- | --- |"]  # fmt: skip
    for resolution, budget in results["tokens"].items():
        lines.append(f"| {resolution} | {budget['frames']} | {budget['vtok_key_tokens']} + {budget['vtok_residual_tokens']} = "
                     f"{budget['vtok_tokens']} | {budget['plain_tokens']} |")  # fmt: skip
    keys = list(dict.fromkeys(key for version in VERSIONS for key in results[version]))
    lines += ["", "Later frames only (frame 0 is the key frame in every version):", "",
              f"| measure | {HEADERS} |", "| --- |" + " --- |" * len(VERSIONS)]  # fmt: skip
    for key in keys:
        cells = [f"{results[v][key]:.4g}" if key in results[v] else "—" for v in VERSIONS]
        lines.append(f"| {key} | {' | '.join(cells)} |")
    for group, versions in results["by_group"].items():
        label = "moving objects (position error measured)" if group == "moving" else "other clips"
        lines += ["", f"Per-clip means, {label}:", "", f"| measure | {HEADERS} |", "| --- |" + " --- |" * len(VERSIONS)]
        for key in versions["vtok"]:
            lines.append(f"| {key} | {' | '.join(f'{versions[v][key]:.4g}' for v in VERSIONS)} |")
    if results.get("residual_codebook_size"):
        lines += ["", f"Residual codes used on val: {results['residual_codes_used']} of {results['residual_codebook_size']}."]
    if results["unavailable"]:
        lines += ["", "Not computed:", ""] + [f"- `{m}`: {reason}" for m, reason in results["unavailable"].items()]
    return "\n".join(lines) + "\n"
