"""``omnipipe import-reference``: a released OmniTokenizer ``.ckpt`` (VQ or VAE) → an omnipipe tokenizer checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-reference",
        help="convert a FoundationVision/OmniTokenizer Lightning checkpoint (VQ or VAE) to an omnipipe tokenizer",
    )
    parser.add_argument("checkpoint", type=Path, help="the reference .ckpt (loaded with weights_only=True)")
    parser.add_argument("--out", type=Path, required=True, help="omnipipe tokenizer file to write (.safetensors)")
    parser.add_argument("--spec-out", type=Path, help="also write the model spec as YAML (a pipeline's `model:` section)")
    parser.add_argument(
        "--attention-path",
        choices=("sdpa", "einsum"),
        default="sdpa",
        help="the reference attention branch the weights were trained with: sdpa (torch ≥ 2.1, the default) or "
        "einsum (adds its position biases and ALiBi; imagenet_only.ckpt, per the reference's README)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from omnipipe.atomic import atomic_write
    from omnipipe.reference.convert import import_reference

    model, report = import_reference(args.checkpoint, args.attention_path)
    model.save(args.out)
    if args.spec_out is not None:
        text = yaml.safe_dump({"model": model.spec.model_dump(mode="json")}, sort_keys=False)
        atomic_write(args.spec_out, lambda file: file.write(text.encode()))
    params = sum(p.numel() for p in model.parameters())
    kind = "VQ" if model.quantizer.codebook_size else "KL"
    print(f"{args.checkpoint} → {args.out}: {kind} tokenizer, {params / 1e6:.2f} M parameters, {report.imported} tensors imported")
    for note, count in sorted(report.unused.items()):
        print(f"  not imported ({count}): {note}")
    for prefix, count in sorted(report.ignored.items()):
        print(f"  skipped ({count}): {prefix}.* (training only)")
    return 0
