"""Quantizer benchmark: vq, fsq, lfq and bsq at 256 codes after the same step budget on the tiny data.

    python benchmarks/quantizers.py [--steps N] [--quantizers vq,fsq,lfq,bsq] [--prepared DIR]
                                    [--set bsq.inv_temperature=10 ...] [--out benchmarks/results/quantizers.json]

Each quantizer trains the tiny spec's ``image_pretrain`` stage (``pipelines/tiny.yaml`` for vq,
``pipelines/tiny-<name>.yaml`` for the plugins, which must be installed: ``pip install
./plugins/omnipipe-<name>``) for the same number of steps, with the same seed and data, in a
temporary outputs folder. Then, over the whole val split (every val image once, centre crops at the
stage's resolution): codebook usage (fraction of the codes used at least once) and perplexity
(exp entropy of the code frequencies) of all the codes of all val images, and reconstruction PSNR
on pixels mapped to [0, 1] (clamped), mean over images; the same again with every frame of every
val clip encoded as an image too (the tiny val split has only 2 images, 128 tokens). Data are prepared into the temporary
folder unless ``--prepared`` names an existing prepared folder of the tiny spec.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from omnipipe.data.loader import make_loader
from omnipipe.data.prepare import prepare
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import load_registry
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.loader import parse_spec
from omnipipe.train.trainer import train_stage

ROOT = Path(__file__).resolve().parents[1]
STAGE = "image_pretrain"
SPECS = {"vq": "tiny.yaml", "fsq": "tiny-fsq.yaml", "lfq": "tiny-lfq.yaml", "bsq": "tiny-bsq.yaml"}


def load_variant(
    name: str, folder: Path, prepared: Path, steps: int | None, registry: Registry, overrides: dict[str, Any]
) -> Experiment:
    """The quantizer's tiny spec with outputs (and prepared data) in ``folder``, the step budget and
    ``overrides`` of the quantizer's params."""
    spec_file = ROOT / "pipelines" / SPECS[name]
    raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    raw["model"]["quantizer"].update(overrides)
    raw["outputs"]["dir"] = str(folder / "outputs")
    raw["data"]["prepared_dir"] = str(prepared)
    stage = raw["train"]["stages"][STAGE]
    if steps is not None:
        stage["steps"] = steps
    stage["checkpoint_every"] = stage["steps"]  # only the final checkpoint: less disk I/O in the timing
    return parse_spec(yaml.safe_dump(raw, sort_keys=False), str(spec_file), registry)


@torch.no_grad()
def evaluate_val(model: Tokenizer, spec: Experiment, with_clip_frames: bool = False) -> dict[str, Any]:
    """Codebook usage/perplexity over all codes of all val images; PSNR in [0, 1], mean over images.

    ``with_clip_frames``: every frame of every val clip is encoded as an image too (more tokens for
    the codebook statistics: the tiny val split holds only a couple of images).
    """
    stage = spec.train.stages[STAGE]
    if with_clip_frames:
        stage = stage.model_copy(update={"data": "joint"})
    size = model.quantizer.codebook_size
    counts = torch.zeros(size, dtype=torch.float64)
    psnrs: list[torch.Tensor] = []
    tokens = 0
    for batch in make_loader(spec, stage, "val"):
        x = batch.pixels  # (B, C, T, H, W) in [-1, 1]
        x = x.transpose(1, 2).reshape(-1, x.shape[1], 1, *x.shape[3:])  # frames as images (B·T, C, 1, H, W)
        q = model.quantize(model.encode(x))
        recon = model.decode(q.z_q)
        counts += torch.bincount(q.codes.flatten(), minlength=size).double()
        tokens += q.codes.numel()
        target, output = (x + 1) / 2, ((recon + 1) / 2).clamp(0, 1)
        mse = (output - target).square().flatten(1).mean(1).double()  # (B,)
        psnrs.append(10 * torch.log10(1 / mse.clamp_min(1e-12)))
    probs = counts / counts.sum()
    psnr = torch.cat(psnrs)
    return {
        "val_images": len(psnr),
        "val_tokens": tokens,
        "codes_used": int((counts > 0).sum()),
        "usage": float((counts > 0).double().mean()),
        "perplexity": float((-torch.xlogy(probs, probs).sum()).exp()),
        "psnr": float(psnr.mean()),
        "psnr_std": float(psnr.std()) if len(psnr) > 1 else 0.0,
    }


def run(
    name: str, folder: Path, prepared: Path, steps: int | None, registry: Registry, overrides: dict[str, Any]
) -> dict[str, Any]:
    spec = load_variant(name, folder / name, prepared, steps, registry, overrides)
    stage = spec.train.stages[STAGE]
    started = time.perf_counter()
    paths = train_stage(spec, STAGE, registry)
    train_s = time.perf_counter() - started
    model = Tokenizer.from_checkpoint(paths.model_file, registry)
    quantizer = spec.model.quantizer
    row = {
        "quantizer": name,
        "spec": f"pipelines/{SPECS[name]}",
        "overrides": overrides,
        "params": quantizer.params.model_dump(mode="json"),
        "codebook_size": model.quantizer.codebook_size,
        "steps": stage.steps,
        "batch_size": stage.batch_size,
        "train_s": train_s,
        "final_train": final_train_metrics(paths.live_dir),
    }
    row.update(evaluate_val(model, spec))
    row["with_clip_frames"] = evaluate_val(model, spec, with_clip_frames=True)
    return row


def final_train_metrics(live_dir: Path) -> dict[str, float]:
    """The last logged training values (dvclive's metrics.json), losses and codebook stats."""
    path = live_dir / "metrics.json"
    if not path.exists():
        return {}
    flat: dict[str, float] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}/{key}" if prefix else key, value)
        elif isinstance(node, (int, float)) and prefix.startswith(("loss", "codebook")):
            flat[prefix] = float(node)

    walk("", json.loads(path.read_text()))
    return flat


def table(rows: list[dict[str, Any]]) -> str:
    first = rows[0] if rows else {}
    more = first.get("with_clip_frames", {})
    lines = [
        f"val images: {first.get('val_images')} ({first.get('val_tokens')} tokens); + val clip frames as images: "
        f"{more.get('val_images')} ({more.get('val_tokens')} tokens)",
        "",
        "| quantizer | params | codes | steps | train s | val images: used / usage / perplexity | PSNR dB | "
        "+ clip frames: used / usage / perplexity | PSNR dB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        m = r["with_clip_frames"]
        shown = ("levels", "code_bits", "codebook_size", "code_dim", *r["overrides"])
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k in shown)
        lines.append(
            f"| {r['quantizer']} | {params} | {r['codebook_size']} | {r['steps']} | {r['train_s']:.0f} | "
            f"{r['codes_used']} / {r['usage']:.3f} / {r['perplexity']:.1f} | {r['psnr']:.2f} | "
            f"{m['codes_used']} / {m['usage']:.3f} / {m['perplexity']:.1f} | {m['psnr']:.2f} ± {m['psnr_std']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the tiny spec's, 400)")
    parser.add_argument("--quantizers", default="vq,fsq,lfq,bsq", help="comma-separated, from: " + ",".join(SPECS))
    parser.add_argument("--prepared", type=Path, default=None, help="an existing prepared folder of the tiny spec")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.PARAM=VALUE",
                        help="override a quantizer param of its tiny spec, e.g. bsq.inv_temperature=10 (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "quantizers.json")
    args = parser.parse_args()
    names = [n.strip() for n in args.quantizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        parser.error(f"unknown quantizer(s) {unknown}; choose from {list(SPECS)}")
    overrides: dict[str, dict[str, Any]] = {n: {} for n in names}
    for item in args.set:
        target, _, value = item.partition("=")
        name, _, key = target.partition(".")
        if name not in overrides or not key or not value:
            parser.error(f"--set {item}: expected NAME.PARAM=VALUE with NAME one of {names}")
        overrides[name][key] = yaml.safe_load(value)
    registry = load_registry()
    missing = [n for n in names if n not in registry.names("quantizer")]
    if missing:
        parser.error(f"quantizer(s) {missing} not installed: pip install " + " ".join(f"./plugins/omnipipe-{n}" for n in missing))
    rows = []
    with tempfile.TemporaryDirectory(prefix="omnipipe-quantizers-") as tmp:
        folder = Path(tmp)
        prepared = args.prepared
        if prepared is None:
            prepared = folder / "prepared"
            base = parse_spec((ROOT / "pipelines" / "tiny.yaml").read_text(encoding="utf-8"), "tiny.yaml", registry)
            prepare(base.data.model_copy(update={"prepared_dir": str(prepared)}), registry, progress=False)
        for name in names:
            print(f"--- {name}", file=sys.stderr, flush=True)
            rows.append(run(name, folder, prepared, args.steps, registry, overrides[name]))
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "stage": STAGE,
        "rows": rows,
    }, indent=1))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
