"""The tokenizer's fused and blocked CPU paths against the plain forms they replace, alone and in the paper-scale model.

    python benchmarks/fusion.py [--rounds 7] [--frames 17] [--out F]

Paths (each exact or within fp32 rounding of the form it replaces; see its module):
- GEGLU's gated product (``omnipipe.nn.gated_linear``): the value and gate halves as two oneDNN
  products, GELU and the multiply fused into their epilogues, vs one 2,730-wide product, chunked,
  then GELU and multiply on the strided halves (inference; training keeps the one-product form).
- RoPE (``omnipipe.nn.rope``): the halves rotation written into its output without a concatenation
  (outside autograd), and the interleaved (reference) rotation as one complex multiply, vs the real
  arithmetic concatenated; on q as attention sees it (a strided view of the fused qkv output).
- VQ lookup (``VectorQuantizer.nearest``): scores in 4 MB blocks vs one (5,120 × 8,192) matrix.
- Whole model: ``peak.py``'s cases (encode+decode of one 17×256² clip and one 256² image, a training
  step) with all of the above vs all of them replaced by the plain forms.
Each pair runs interleaved, ``--rounds`` times; the table gives medians and their ratio (plain / new:
above 1, the new path is faster).
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
from measure import interleaved_medians, write_result
from peak import case_pairs
from tokenizer import CONFIGS

import omnipipe.nn.attention
import omnipipe.nn.mlp
import omnipipe.nn.spatial_attention
import omnipipe.nn.vq
from omnipipe.nn.components import register
from omnipipe.nn.gated_linear import gated_linear
from omnipipe.nn.linear import linear
from omnipipe.nn.rope import (
    apply_interleaved_rope,
    apply_rope,
    interleaved_spatial_angles,
    rotate_halves,
    rotate_pairs,
    spatial_angles,
)
from omnipipe.registry import Registry

Pair = tuple[Callable[[], Any], Callable[[], Any]]


def plain_gated(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The one-product form: ``linear``, chunk, activation and multiply on the strided halves."""
    value, gate = linear(x, weight, bias).chunk(2, dim=-1)
    return value * (F.gelu(gate) if activation == "gelu" else F.silu(gate))


def plain_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Pairs (i, i + hd/2), rotated by real arithmetic and concatenated."""
    return rotate_halves(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


def plain_interleaved_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Adjacent pairs, rotated by real arithmetic and stacked."""
    return rotate_pairs(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


@contextlib.contextmanager
def plain_forms() -> Iterator[None]:
    """The tokenizer with every path of this benchmark replaced by its plain form."""
    patches = [(omnipipe.nn.mlp, "gated_linear", plain_gated), (omnipipe.nn.attention, "apply_rope", plain_rope),
               (omnipipe.nn.spatial_attention, "apply_rope", plain_rope),
               (omnipipe.nn.spatial_attention, "apply_interleaved_rope", plain_interleaved_rope),
               (omnipipe.nn.vq, "NEAREST_BLOCK", 1 << 62)]  # fmt: skip
    with contextlib.ExitStack() as stack:
        for module, name, value in patches:
            stack.enter_context(mock.patch.object(module, name, value))
        yield


def gated_pairs(tokens: int) -> dict[str, Pair]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, 512, generator=generator)
    weight, bias = torch.randn(2730, 512, generator=generator) / 512**0.5, torch.randn(2730, generator=generator)
    return {f"GEGLU {tokens}×512→1,365": (lambda: plain_gated(x, weight, bias, "gelu"), lambda: gated_linear(x, weight, bias, "gelu"))}


def rope_pairs(frames: int) -> dict[str, Pair]:
    qkv = torch.randn(1, frames, 32, 32, 3 * 512, generator=torch.Generator().manual_seed(0))
    q = qkv.unflatten(-1, (3, 8, 64))[..., 0, :, :]  # (1, T, 32, 32, 8, 64), strided
    cpu = torch.device("cpu")
    halves, pairs = spatial_angles(32, 32, 64, cpu)[:, :, None], interleaved_spatial_angles(32, 32, 64, cpu)[:, :, None]
    return {f"RoPE halves q {frames}×32²×8×64": (lambda: plain_rope(q, halves), lambda: apply_rope(q, halves)),
            f"RoPE interleaved q {frames}×32²×8×64": (lambda: plain_interleaved_rope(q, pairs), lambda: apply_interleaved_rope(q, pairs))}  # fmt: skip


def nearest_pair() -> dict[str, Pair]:
    registry = Registry()
    register(registry)
    vq = registry.build("quantizer", CONFIGS["paper"]["quantizer"], dim=512)
    flat = F.normalize(torch.randn(5120, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    table = vq.lookup_table().detach()

    def whole() -> torch.Tensor:
        with plain_forms():
            return vq.nearest(flat, table)

    return {"VQ nearest 5,120 of 8,192 codes": (whole, lambda: vq.nearest(flat, table))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fusion.json"))
    args = parser.parse_args()
    cpu = torch.device("cpu")
    latent_frames = 1 + (args.frames - 1) // 4
    groups = {"path": {**gated_pairs(1024), **gated_pairs(latent_frames * 1024), **rope_pairs(latent_frames), **nearest_pair()},
              "model": case_pairs(args.frames, plain_forms)}  # fmt: skip
    rows = []
    print(f"{torch.get_num_threads()} threads; medians of {args.rounds} interleaved rounds")
    print(f"{'case':<40} {'plain ms':>10} {'new ms':>10}  {'ratio':>6}")
    for group, pairs in groups.items():
        for name, (plain, new) in pairs.items():
            medians = interleaved_medians({"plain": plain, "new": new}, cpu, args.rounds)
            row = {"group": group, "case": name, "plain_s": medians["plain"], "new_s": medians["new"],
                   "speedup": medians["plain"] / medians["new"]}  # fmt: skip
            rows.append(row)
            print(f"{name:<40} {row['plain_s'] * 1e3:>10.2f} {row['new_s'] * 1e3:>10.2f}  {row['speedup']:>5.2f}×", flush=True)
    write_result(args.out, {"rounds": args.rounds, "threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
