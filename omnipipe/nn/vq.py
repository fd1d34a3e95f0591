"""Quantizer ``vq``: nearest-neighbour codebook lookup in a small projected space.

DDP hook: in training, the batch statistics (per-code ``counts`` (K,) and ``sums`` (K, code_dim))
pass through ``sync_fn`` before ``ema_update`` applies them; a distributed trainer sets e.g.
``quantizer.sync_fn = lambda t: (torch.distributed.all_reduce(t), t)[1]`` so every rank applies the
same update. Dead-code restarts draw replacement vectors from the batch; ``broadcast_fn`` (e.g.
rank 0's picks sent to every rank) makes every rank restart the same codes with the same vectors, so
the codebooks stay identical without broadcasting buffers.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.nn.code_stats import usage_stats
from omnipipe.nn.quantizer_output import QuantizerOutput

NEAREST_BLOCK = 1 << 20  # scores per block in `VectorQuantizer.nearest`: 4 MB in fp32


class VectorQuantizer(nn.Module):
    """VQ bottleneck: project to ``code_dim``, (cosine) lookup, straight-through, project back to ``dim``."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        codebook_size: int = Field(default=8192, gt=1, description="number of codes K")
        code_dim: int = Field(default=8, gt=0, description="dimension of the lookup space")
        l2_normalize: bool = Field(default=True, description="cosine lookup on unit vectors")
        normalize_codebook: bool | None = Field(
            default=None,
            description="l2-normalise the codes too (None: as l2_normalize); false with l2_normalize true is the "
            "released OmniTokenizer's lookup: unit inputs against the raw EMA codes, by squared L2 distance",
        )
        update: Literal["ema", "loss"] = Field(
            default="ema", description="codebook moves by EMA of assigned vectors, or by a `codebook` loss term"
        )
        decay: float = Field(default=0.99, gt=0, lt=1, description="EMA decay of codebook and cluster sizes")
        beta: float = Field(default=0.25, ge=0, description="commitment weight β inside the `commitment` term")
        dead_code_threshold: float = Field(
            default=0.03,
            ge=0,
            description="restart a code whose EMA assignment count per batch falls below this (counts start "
            "at 1, so an unused code is restarted after log(threshold)/log(decay) steps); 0 disables",
        )
        eps: float = Field(default=1e-5, gt=0, description="Laplace smoothing of the EMA cluster sizes")

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params = params
        self.codebook_size: int | None = params.codebook_size
        self.sync_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.broadcast_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.proj_in = nn.Linear(dim, params.code_dim)
        self.proj_out = nn.Linear(params.code_dim, dim)
        codebook = torch.randn(params.codebook_size, params.code_dim)
        codebook = F.normalize(codebook, dim=-1) if self.unit_codes else codebook
        if params.update == "ema":
            self.register_buffer("codebook", codebook)
            self.register_buffer("embed_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("cluster_size", torch.ones(params.codebook_size))

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if self.params.l2_normalize else x

    @property
    def unit_codes(self) -> bool:
        """Whether the lookup table is l2-normalised."""
        normalize = self.params.normalize_codebook
        return self.params.l2_normalize if normalize is None else normalize

    def lookup_table(self) -> torch.Tensor:
        """The codebook as used for lookup, at least fp32 (K, code_dim)."""
        table = self.codebook.to(_at_least_fp32(self.codebook.dtype))
        return F.normalize(table, dim=-1) if self.unit_codes else table

    def nearest(self, flat: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the nearest code for each fp32 vector of ``flat`` (N, code_dim).

        On CPU rows go in blocks of at most ``NEAREST_BLOCK`` scores, so the (rows, K) score matrix stays
        in cache: one (5,120, 8,192) matrix is 168 MB, freshly paged in and read twice. A GPU takes the
        whole matrix in one product.
        """
        if flat.device.type != "cpu":
            return self._nearest_block(flat, table)
        rows = max(1, NEAREST_BLOCK // table.shape[0])
        return torch.cat([self._nearest_block(block, table) for block in flat.split(rows)])

    def _nearest_block(self, flat: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        if self.params.l2_normalize and self.unit_codes:
            return (flat @ table.T).argmax(dim=-1)  # unit vectors: max cosine = min distance
        distances = flat.square().sum(-1, keepdim=True) - 2 * flat @ table.T + table.square().sum(-1)
        return distances.argmin(dim=-1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Latents (B, T', H', W', D) → QuantizerOutput with codes (B, T', H', W'); lookup in fp32."""
        with torch.autocast(z.device.type, enabled=False):
            e = self._normalize(self.proj_in(z.to(_at_least_fp32(z.dtype))))  # (B, T', H', W', d)
            flat = e.reshape(-1, e.shape[-1]).detach()  # (N, d)
            table = self.lookup_table()
            codes = self.nearest(flat, table)  # (N,)
            q = F.embedding(codes, table).view_as(e)  # (B, T', H', W', d)
            losses = {"commitment": self.params.beta * F.mse_loss(e, q.detach())}
            if self.params.update == "loss":
                losses["codebook"] = F.mse_loss(q, e.detach())
            counts = torch.bincount(codes, minlength=self.params.codebook_size).to(flat.dtype)  # (K,)
            stats = usage_stats(counts)
            if self.training:
                stats["restarted"] = self.train_step(flat, codes, counts)
            z_q = self.proj_out(e + (q - e).detach())  # straight-through estimator
        return QuantizerOutput(z_q, codes.view(z.shape[:-1]), losses, stats)

    @torch.compiler.disable  # eager under torch.compile: a small update whose restart count is data-dependent
    @torch.no_grad()
    def train_step(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Apply one batch's statistics (synced through ``sync_fn``), then restart dead codes."""
        sums = flat.new_zeros(self.codebook.shape).index_add_(0, codes, flat)  # (K, d)
        if self.sync_fn is not None:
            counts, sums = self.sync_fn(counts.clone()), self.sync_fn(sums)
        self.ema_update(counts, sums)
        return self.restart_dead_codes(flat)

    @torch.no_grad()
    def ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """EMA of cluster sizes (always) and, with ``update: ema``, of code sums → codebook (Laplace-smoothed)."""
        decay, eps, k = self.params.decay, self.params.eps, self.params.codebook_size
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        if self.params.update != "ema":
            return
        self.embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + eps) / (total + k * eps) * total  # (K,)
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, candidates: torch.Tensor) -> torch.Tensor:
        """Replace codes whose EMA cluster size is below the threshold by random rows of ``candidates`` (N, d)."""
        dead = self.cluster_size < self.params.dead_code_threshold  # (K,)
        n_dead = int(dead.sum())
        if n_dead:
            picks = candidates[torch.randint(len(candidates), (n_dead,), device=candidates.device)]
            if self.broadcast_fn is not None:
                picks = self.broadcast_fn(picks.contiguous())
            self.codebook[dead] = picks.to(self.codebook.dtype)
            self.cluster_size[dead] = 1.0
            if self.params.update == "ema":
                self.embed_sum[dead] = picks
        return torch.tensor(float(n_dead))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', H', W') → z_q (B, T', H', W', D)."""
        with torch.autocast(codes.device.type, enabled=False):
            return self.proj_out(F.embedding(codes, self.lookup_table()))


def _at_least_fp32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)
