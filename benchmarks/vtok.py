"""VTok benchmark: tokens per clip, tokenize/detokenize time and `ar` sampling time per clip, VTok against the
plain OmniTokenizer at the same key-frame tokens.

    python benchmarks/vtok.py [--quick] [--out benchmarks/results/vtok.json]

Cases: the tiny configuration (5×32² clips, as in pipelines/tiny.yaml) and the paper-scale OmniTokenizer
(17×256² clips; tokenizer timed at 9×128² on CPU), random weights (time and counts do not depend on
them), fp32, best of N under ``torch.inference_mode``. Sampling: the tiny ``ar`` generator (width 128,
4 layers) draws one clip's whole sequence with its KV cache, for the VTok layout (N + U tokens) and the
plain one (N·T'); at paper lengths too unless ``--quick``.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from measure import best_time

from omnipipe.generate.ar import ARGenerator
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry
from omnipipe.spec.model import ModelSpec
from omnipipe.spec.vtok import VTokModelSpec
from omnipipe.vtok import VTok

FULL, WIN4, WIN8 = {"type": "full"}, {"type": "window", "window_size": 4}, {"type": "window", "window_size": 8}
CONFIGS: dict[str, dict[str, Any]] = {  # (OmniTokenizer, VTok parts)
    "tiny": (
        {"patchifier": {"type": "omni", "patch_size": 4, "temporal_patch_size": 4},
         "encoder": {"width": 64, "num_heads": 4, "spatial": [FULL, WIN4], "temporal": [{"type": "causal"}]},
         "quantizer": {"type": "vq", "codebook_size": 256, "code_dim": 8},
         "decoder": {"width": 64, "num_heads": 4, "spatial": [FULL, WIN4], "temporal": [{"type": "causal"}]}},
        {"residual_width": 64, "residual_quantizer": {"type": "vq", "codebook_size": 64, "code_dim": 8},
         "predictor": {"width": 64, "num_heads": 4, "spatial": [FULL, FULL]}},
    ),
    "paper": (
        {"patchifier": {"type": "omni", "patch_size": 8, "temporal_patch_size": 4},
         "encoder": {"width": 512, "num_heads": 8, "spatial": [FULL, FULL, WIN8, WIN8], "temporal": [{"type": "causal"}] * 4,
                     "mlp": "geglu"},
         "quantizer": {"type": "vq", "codebook_size": 8192, "code_dim": 8},
         "decoder": {"width": 512, "num_heads": 8, "spatial": [WIN8, WIN8, FULL, FULL], "temporal": [{"type": "causal"}] * 4,
                     "mlp": "geglu"}},
        {"residual_width": 256, "residual_quantizer": {"type": "vq", "codebook_size": 1024, "code_dim": 8},
         "predictor": {"width": 256, "num_heads": 8, "spatial": [FULL, FULL, FULL, FULL]}},
    ),
}
# (config, batch, frames, height, width) of the tokenizer timing; the clip shape whose tokens are counted
TOKENIZER_CASES = [("tiny", 4, 5, 32, 32), ("paper", 1, 9, 128, 128)]
COUNTED = {"tiny": (5, 32, 32), "paper": (17, 256, 256)}
AR = {"width": 128, "depth": 4, "num_heads": 4}


def build(name: str, unit: str) -> VTok:
    torch.manual_seed(0)
    registry = get_registry()
    base_spec, parts = CONFIGS[name]
    base = Tokenizer.from_spec(ModelSpec.model_validate(base_spec), registry)
    return VTok(VTokModelSpec.model_validate({**parts, "residual_unit": unit}), base, registry).eval()


def tokenizer_rows(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, b, t, h, w in TOKENIZER_CASES:
        for unit in ("frame", "latent_frame"):
            model = build(name, unit)
            x = torch.rand(b, 3, t, h, w) * 2 - 1
            with torch.inference_mode():
                tokens, codes = model.tokenize(x), model.base.tokenize(x)
                timed = {
                    "vtok_tokenize_s": best_time(lambda: model.tokenize(x), x.device, repeats),
                    "vtok_detokenize_s": best_time(lambda: model.detokenize(tokens), x.device, repeats),
                    "plain_tokenize_s": best_time(lambda: model.base.tokenize(x), x.device, repeats),
                    "plain_detokenize_s": best_time(lambda: model.base.detokenize(codes), x.device, repeats),
                }
            frames, height, width = COUNTED[name]
            counts = {"vtok_tokens": model.layout(frames, height, width).length,
                      "plain_tokens": model.base.layout(frames, height, width).length}  # fmt: skip
            rows.append({"config": name, "unit": unit, "batch": b, "frames": t, "height": h, "width": w,
                         "counted_clip": [frames, height, width], **counts, **timed})  # fmt: skip
    return rows


def sampling_rows(quick: bool, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name in ("tiny",) if quick else ("tiny", "paper"):
        model = build(name, "frame")
        frames, height, width = COUNTED[name]
        for version, layout in (("vtok", model.layout(frames, height, width, 10)),
                                ("plain", model.base.layout(frames, height, width, 10))):  # fmt: skip
            torch.manual_seed(0)
            ar = ARGenerator(ARGenerator.Params(**AR), layout).eval()
            labels = torch.arange(4) % 10
            seconds = best_time(lambda: ar.sample(labels, generator=torch.Generator().manual_seed(0)), labels.device,
                                1 if name == "paper" else repeats)  # fmt: skip
            rows.append({"config": name, "version": version, "sequence": layout.length, "clips": 4,
                         "seconds_per_clip": seconds / 4})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sampling only, fewer repeats")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/vtok.json"))
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    results = {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "tokenizer": tokenizer_rows(repeats), "sampling": sampling_rows(args.quick, repeats),
    }
    print(f"{'config':<6} {'unit':<13} {'tokens/clip VTok':>16} {'plain':>6}   {'timed B×T×H×W':<14} "
          f"{'tokenize VTok / plain':>22} {'detokenize VTok / plain':>24}")
    for r in results["tokenizer"]:
        shape = f"{r['batch']}×{r['frames']}×{r['height']}×{r['width']}"
        print(f"{r['config']:<6} {r['unit']:<13} {r['vtok_tokens']:>16} {r['plain_tokens']:>6}   {shape:<14} "
              f"{r['vtok_tokenize_s']:>10.3f} / {r['plain_tokenize_s']:.3f} s {r['vtok_detokenize_s']:>12.3f} / "
              f"{r['plain_detokenize_s']:.3f} s")
    print(f"ar sampling (width {AR['width']}, depth {AR['depth']}, KV cache), seconds per clip:")
    for r in results["sampling"]:
        print(f"  {r['config']:<6} {r['version']:<6} {r['sequence']:>5} tokens  {r['seconds_per_clip']:.3f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
