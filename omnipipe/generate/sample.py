"""``omnipipe sample``: draw a trained generator's samples with a fixed seed; tokens, PNG grids, mp4s.

One run per entry of ``sample.prefix_frames``: ``generate`` (0: whole clips, ``per_class`` per class
for class-conditional models, else ``count`` unconditional ones) or ``predict-<k>`` (the first
``count`` val clips continued from their first k latent frames, each with its own label); then one
``generate-<variant>`` run of whole clips per entry of ``sample.variants`` (other sampling settings).

```
<outputs>/<name>/generators/<generator>/
  samples/summary.json                    seed, settings, runs
  samples/<run>/tokens.npy                int32 (N, L) codes / float32 (N, L, C) latents
  samples/<run>/labels.npy, rows.npy      int64 (N,) label; the val row whose prefix was given (-1: none)
  pictures/<run>.png                      images: one row per class; clips: one row per class, frames left
                                          to right (predictions: the real clip below)
  pictures/<run>.gif                      clips: the samples of every class side by side, animated
  videos/<run>/class-<c>.mp4              clips: the first samples of a class (predictions: real | predicted)
```
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel

from omnipipe.atomic import atomic_write, write_json, write_npy
from omnipipe.evaluate.visuals import side_by_side, write_clip, write_grid
from omnipipe.generate.checkpoint import load_generator
from omnipipe.generate.contract import TokenLayout
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.real_clips import real_pixels
from omnipipe.generate.token_dataset import TokenDataset
from omnipipe.generate.layout_check import check_layout
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.vtok.model import VTok, load_tokenizer
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.train.distributed import pick_device
from omnipipe.train.paths import StagePaths

COLUMNS = 10  # samples per class shown in a grid


@dataclass
class SampleRun:
    """What one sampling run asks for: labels, optional prefix rows of the val split, sampling settings."""

    name: str
    prefix_frames: int
    labels: torch.Tensor  # (N,)
    rows: np.ndarray  # (N,) val rows giving the prefix, -1 when none
    settings: BaseModel
    variant: str | None = None


def run_name(prefix_frames: int) -> str:
    return "generate" if prefix_frames == 0 else f"predict-{prefix_frames}"


def plan_runs(spec: Experiment, name: str, data: TokenDataset, layout: TokenLayout) -> list[SampleRun]:
    sample = spec.generate.generators[name].sample
    if layout.conditional:
        whole = torch.arange(layout.num_classes).repeat_interleave(sample.per_class)
    else:
        whole = torch.full((sample.count,), -1)
    runs = []
    for frames in sample.prefix_frames:
        if frames == 0:
            runs.append(SampleRun(run_name(0), 0, whole, np.full(len(whole), -1), sample.sampling))
        else:
            val = data.split("val")
            rows = val.originals()[: sample.count]
            labels = torch.from_numpy(val.labels[rows]) if layout.conditional else torch.full((len(rows),), -1)
            runs.append(SampleRun(run_name(frames), frames, labels, rows, sample.sampling))
    for variant, settings in sample.variant_sampling.items():
        runs.append(SampleRun(f"{run_name(0)}-{variant}", 0, whole, np.full(len(whole), -1), settings, variant))
    return runs


def decode_tokens(tokenizer: Tokenizer | VTok, layout: TokenLayout, tokens: torch.Tensor) -> torch.Tensor:
    """Sequences (B, L[, C]) of ``layout`` → pixels (B, C, T, H, W) through the tokenizer that wrote them."""
    with torch.inference_mode():
        return tokenizer.detokenize(tokenizer.from_sequence(tokens, layout))


def load_parts(
    spec: Experiment, name: str, registry: Registry, device: torch.device
) -> tuple[Any, TokenDataset, Tokenizer | VTok]:
    """The trained generator, its token dataset and the tokenizer that wrote the tokens (its layout checked)."""
    paths = GenerationPaths.of(spec)
    entry = spec.generate.generators[name]
    data = TokenDataset.load(paths.tokens(entry.tokens))
    model = load_generator(paths.model_file(name), registry, device)
    tokenizer_file = StagePaths.of(spec, data.info["tokenizer"]).model_file
    tokenizer = load_tokenizer(tokenizer_file, registry, device)
    frames = spec.data.clip_frames if data.info["kind"] == "video" else 1
    check_layout(data.layout, tokenizer.layout(frames, *data.info["resolution"]), data.root / "index.json", tokenizer_file)
    return model, data, tokenizer


def sample_generator(spec: Experiment, name: str, registry: Registry, device: str | None = None) -> dict[str, Any]:
    """Every sampling run of generator ``name``; returns the summary written to ``samples/summary.json``, its
    runs with their ``seconds_per_sample`` added (kept out of the file: equal samples give an equal DVC output)."""
    torch_device = pick_device(device)
    entry = spec.generate.generators[name]
    model, data, tokenizer = load_parts(spec, name, registry, torch_device)
    out = GenerationPaths.of(spec).samples(name)
    summary: dict[str, Any] = {"generator": name, "seed": entry.sample.seed,
                               "settings": entry.sample.sampling.model_dump(mode="json"), "runs": {}}  # fmt: skip
    seconds_per_sample: dict[str, float] = {}
    for run in plan_runs(spec, name, data, model.layout):
        settings = run.settings.model_dump(mode="json")
        generator = torch.Generator(torch_device).manual_seed(entry.sample.seed)
        val = data.split("val")
        tokens = []
        started = time.perf_counter()
        for start in range(0, len(run.labels), entry.sample.batch_size):
            labels = run.labels[start : start + entry.sample.batch_size].to(torch_device)
            prefix = None
            if run.prefix_frames:
                rows = run.rows[start : start + entry.sample.batch_size]
                prefix = val.tokens(rows)[:, : model.layout.prefix_length(run.prefix_frames)].to(torch_device)
            tokens.append(model.sample(labels, prefix=prefix, generator=generator, **settings).cpu())
        sampled = torch.cat(tokens)
        seconds = time.perf_counter() - started
        model.layout.check(sampled, f"generator '{name}' samples")
        folder = out / run.name
        write_npy(folder / "tokens.npy", sampled.numpy().astype(np.int32 if model.layout.kind == "codes" else np.float32))
        write_npy(folder / "labels.npy", run.labels.numpy().astype(np.int64))
        write_npy(folder / "rows.npy", run.rows.astype(np.int64))
        _pictures(spec, name, run, sampled, model.layout, tokenizer, data, torch_device)
        summary["runs"][run.name] = {"samples": len(sampled), "prefix_frames": run.prefix_frames, "variant": run.variant,
                                     "settings": settings, "sequence_length": model.layout.length}  # fmt: skip
        seconds_per_sample[run.name] = seconds / len(sampled)
    write_json(out / "summary.json", summary)
    timed = {name: info | {"seconds_per_sample": seconds_per_sample[name]} for name, info in summary["runs"].items()}
    return summary | {"runs": timed}


def _pictures(
    spec: Experiment, name: str, run: SampleRun, tokens: torch.Tensor, layout: TokenLayout,
    tokenizer: Tokenizer | VTok, data: TokenDataset, device: torch.device,
) -> None:  # fmt: skip
    """The PNG grid, and for clips the GIF and one mp4 per class, of the first samples of each class."""
    paths = GenerationPaths.of(spec)
    classes = sorted(set(run.labels.tolist()))
    shown = {c: np.nonzero(run.labels.numpy() == c)[0][:COLUMNS] for c in classes}
    picked = np.concatenate(list(shown.values()))
    pixels = decode_tokens(tokenizer, layout, tokens[picked].to(device)).cpu()  # (n, C, T, H, W)
    by_row = dict(zip(picked.tolist(), pixels))
    grid = paths.pictures(name) / f"{run.name}.png"
    if pixels.shape[2] == 1:
        write_grid(grid, [side_by_side(*(by_row[i] for i in shown[c]))[0] for c in classes])
        return
    real = {}
    if run.prefix_frames:  # the real clip next to its prediction
        clips, _ = next(real_pixels(spec.data.prepared_dir, data, "val", run.rows[picked], len(picked)))
        real = dict(zip(picked.tolist(), clips))
    fps = max(1, round(spec.data.fps))
    rows, animated = [], []
    for c in classes:
        first = shown[c][0]
        rows += [np.concatenate(list(side_by_side(clip)), axis=1) for clip in (by_row[first], real.get(first)) if clip is not None]
        versions = [v for i in shown[c][:4] for v in (real.get(i), by_row[i]) if v is not None]
        write_clip(paths.videos(name) / run.name / f"class-{c}.mp4", side_by_side(*versions), fps=fps)
        animated.append(side_by_side(*versions))
    write_grid(grid, rows)
    write_gif(grid.with_suffix(".gif"), animated, fps)


def write_gif(path: Path, rows: list[np.ndarray], fps: int, scale: int = 3, gap: int = 2) -> None:
    """Rows of clips (T, H, W, 3) stacked into one animated GIF, atomically."""
    width = max(row.shape[2] for row in rows)
    padded = [np.pad(row, ((0, 0), (0, gap), (0, width - row.shape[2]), (0, 0)), constant_values=255) for row in rows]
    frames = np.concatenate(padded, axis=1).repeat(scale, axis=1).repeat(scale, axis=2)  # (T, H', W', 3)
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


def read_run(folder: Path) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """A run written by ``sample_generator``: tokens, labels, prefix rows."""
    tokens = torch.from_numpy(np.load(folder / "tokens.npy"))
    tokens = tokens.long() if not tokens.is_floating_point() else tokens
    return tokens, torch.from_numpy(np.load(folder / "labels.npy")), np.load(folder / "rows.npy")


def read_summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))
