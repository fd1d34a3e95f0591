"""``omnipipe evaluate-generator``: a generator's samples against the real val clips, next to the
independent-token baseline (Gaussian-noise latents for latent generators), with the sample count,
the sampler settings and the CFG definition written beside every number; val bits per token for
likelihood models.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from omnipipe.atomic import atomic_write, write_json
from omnipipe.generate.baseline import IndependentTokens
from omnipipe.generate.contract import TokenBatch
from omnipipe.generate.gaussian_baseline import GaussianLatents
from omnipipe.generate.paths import GenerationPaths
from omnipipe.generate.real_clips import real_pixels
from omnipipe.generate.sample import decode_tokens, load_parts, read_run, read_summary
from omnipipe.generate.token_dataset import TokenDataset
from omnipipe.metrics.base import MetricUnavailable
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.train.distributed import pick_device

CFG_DEFINITION = (
    "classifier-free guidance on all logits (token models) or all latent channels of the prediction (latent models): "
    "u + s·(c − u), u = null-class output, c = conditional output, s = cfg_scale (1: none); "
    "cfg_schedule linear: s_i = 1 + (s − 1)·(i + 1)/n over the n generated tokens or steps"
)
GENERATOR, BASELINE = "generator", "baseline_independent"


def build_generation_metrics(spec: Experiment, name: str, registry: Registry, device: torch.device) -> tuple[list[Any], dict[str, str]]:
    """Fresh instances of the generator's metrics (its own list, else ``generate.evaluate.metrics``);
    those that cannot run, with the reason."""
    built, unavailable = [], {}
    own = spec.generate.generators[name].evaluate.metrics
    for entry in own if own is not None else spec.generate.evaluate.metrics:
        try:
            built.append(registry.build("metric", entry, allow_proxy=spec.generate.evaluate.allow_proxy, device=device))
        except MetricUnavailable as error:
            unavailable[entry.type] = str(error)
    return built, unavailable


def bits_per_token(model: Any, data: TokenDataset, baseline: IndependentTokens | None, batch_size: int,
                   device: torch.device) -> dict[str, float]:  # fmt: skip
    """Val bits per token of the generator (when it has a likelihood) and of the baseline."""
    val = data.split("val")
    rows = val.originals()
    out: dict[str, float] = {"val_sequences": len(rows)}
    if hasattr(model, "token_nll"):
        total = 0.0
        for start in range(0, len(rows), batch_size):
            batch = val.batch(rows[start : start + batch_size])
            labels = batch.labels if model.layout.conditional else torch.full_like(batch.labels, -1)
            with torch.no_grad():
                total += float(model.token_nll(TokenBatch(batch.tokens.to(device), labels.to(device))).sum())
        out[GENERATOR] = total / (len(rows) * model.layout.length) / math.log(2)
    if baseline is not None:
        out[f"{BASELINE}_entropy"] = baseline.entropy_bits()
        out[f"{BASELINE}_val"] = baseline.cross_entropy_bits(val.tokens(rows).numpy())
    return out


def evaluate_generator(spec: Experiment, name: str, registry: Registry, device: str | None = None) -> dict[str, Any]:
    """Judge every sampling run of ``name``; writes ``metrics.json`` and ``summary.md``; returns the metrics."""
    torch_device = pick_device(device)
    entry, settings = spec.generate.generators[name], spec.generate.evaluate
    paths = GenerationPaths.of(spec)
    model, data, tokenizer = load_parts(spec, name, registry, torch_device)
    layout = model.layout
    train_rows = data.split("train").originals()
    baseline: IndependentTokens | GaussianLatents | None = None
    if settings.baseline:
        train_tokens = data.split("train").tokens(train_rows)
        codes = layout.kind == "codes"
        baseline = IndependentTokens(layout, train_tokens.numpy()) if codes else GaussianLatents(layout, [train_tokens])
    summary = read_summary(paths.samples(name))
    results: dict[str, Any] = {
        "generator": name, "model": entry.model.model_dump(mode="json"), "tokens": entry.tokens,
        "sampler": {"seed": summary["seed"], "settings": summary["settings"]}, "cfg": CFG_DEFINITION,
        "runs": {}, "bits_per_token": bits_per_token(model, data, baseline if layout.kind == "codes" else None,
                                                     settings.batch_size, torch_device),
    }  # fmt: skip
    metrics, unavailable = build_generation_metrics(spec, name, registry, torch_device)
    real_rows = data.split("val").originals()[: entry.evaluate.real_clips]
    if any(metric.needs_train for metric in metrics):
        for pixels, real_labels in real_pixels(spec.data.prepared_dir, data, "train", train_rows, settings.batch_size):
            for metric in metrics:
                if metric.needs_train:
                    metric.update_train(pixels.to(torch_device), real_labels)
    for pixels, real_labels in real_pixels(spec.data.prepared_dir, data, "val", real_rows, settings.batch_size):
        for metric in metrics:
            metric.update_real(pixels.to(torch_device), real_labels)
    for run_name, run_info in summary["runs"].items():  # every run against the same real clips
        tokens, labels, _ = read_run(paths.samples(name) / run_name)
        versions = {GENERATOR: tokens}
        if baseline is not None and not run_info["prefix_frames"] and not run_info.get("variant"):
            versions[BASELINE] = baseline.sample(len(tokens), torch.Generator().manual_seed(summary["seed"]))
        for version, sampled in versions.items():
            for start in range(0, len(sampled), settings.batch_size):
                pixels = decode_tokens(tokenizer, layout, sampled[start : start + settings.batch_size].to(torch_device))
                for metric in metrics:
                    metric.update_generated(f"{run_name}/{version}", pixels, labels[start : start + settings.batch_size])
        results["runs"][run_name] = {"samples": len(tokens), "real_val_clips": len(real_rows),
                                     "prefix_frames": run_info["prefix_frames"], "settings": run_info.get("settings")}  # fmt: skip
    for metric in metrics:
        for version, values in metric.compute().items():
            run_name, _, column = version.rpartition("/")
            for run in results["runs"].values() if not run_name else [results["runs"][run_name]]:
                run.setdefault(column, {}).update(values)  # "real" numbers belong to every run
    results["unavailable"] = unavailable
    out = paths.evaluation(name)
    write_json(out / "metrics.json", results)
    markdown = summary_markdown(results)
    atomic_write(out / "summary.md", lambda file: file.write(markdown.encode("utf-8")))
    return results


def summary_markdown(results: dict[str, Any]) -> str:
    """One table per sampling run: generator next to the baseline (and the real data where it has a number)."""
    lines = [f"# generator `{results['generator']}` on `{results['tokens']}`", "",
             f"Sampler: seed {results['sampler']['seed']}, {results['sampler']['settings']}.", "",
             f"CFG: {results['cfg']}.", ""]  # fmt: skip
    bits = results["bits_per_token"]
    parts = [f"generator {bits[GENERATOR]:.4g}"] if GENERATOR in bits else []
    if f"{BASELINE}_val" in bits:
        parts.append(f"independent-token baseline {bits[f'{BASELINE}_val']:.4g} (its train entropy {bits[f'{BASELINE}_entropy']:.4g})")
    if parts:
        lines += [f"Val bits per token ({bits['val_sequences']} sequences): {', '.join(parts)}.", ""]
    for run, numbers in results["runs"].items():
        columns = [c for c in (GENERATOR, BASELINE, "real") if c in numbers]
        keys = list(dict.fromkeys(k for c in columns for k in numbers[c]))
        changed = {k: v for k, v in (numbers.get("settings") or {}).items() if results["sampler"]["settings"].get(k) != v}
        lines += [f"## {run}: {numbers['samples']} samples, {numbers['real_val_clips']} real val clips"
                  + (f"; settings changed: {changed}" if changed else ""), "",
                  "| metric | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]  # fmt: skip
        for key in keys:
            cells = [f"{numbers[c][key]:.4g}" if key in numbers[c] else "—" for c in columns]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    if results["unavailable"]:
        lines += ["## Not computed", ""] + [f"- `{k}`: {v}" for k, v in results["unavailable"].items()] + [""]
    return "\n".join(lines)
