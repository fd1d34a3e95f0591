"""``ar``: an autoregressive transformer over token sequences (LlamaGen-style), sampled with a KV cache.

Training predicts token i from the class token and tokens < i (teacher forcing, one cross-entropy
over every position); the label is replaced by the null class with p = ``class_dropout``. Sampling
draws one token at a time — temperature, top-k, top-p, classifier-free guidance on all logits — and
continues a given prefix (frame prediction: the first latent frames' tokens).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnipipe.generate.contract import GenerationError, TokenBatch, TokenLayout, class_ids
from omnipipe.generate.guidance import guidance_scale, guide
from omnipipe.generate.sampling import TokenSampling, at_least_fp32, draw, sampling_start
from omnipipe.generate.transformer import KVCache, TokenTransformer, TransformerParams


def drop_classes(classes: torch.Tensor, layout: TokenLayout, probability: float) -> torch.Tensor:
    """Training-time conditioning dropout: each class index becomes the null class with ``probability``."""
    if probability <= 0 or not layout.conditional:
        return classes
    dropped = torch.rand(classes.shape, device=classes.device) < probability
    return torch.where(dropped, torch.full_like(classes, layout.null_class), classes)


def segment_mask(layout: TokenLayout, device: torch.device) -> torch.Tensor | None:
    """(L, V) True where a code lies outside its token's segment vocabulary; None for one segment."""
    if len(layout.segments) == 1:
        return None
    codes = torch.arange(layout.vocab_size, device=device)
    start = layout.vocab_offsets().to(device)[:, None]
    return (codes < start) | (codes >= start + layout.vocab_sizes().to(device)[:, None])


def without_other_segments(logits: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """Logits (..., L, V) with codes of other segments' vocabularies at -inf (after guidance, never before)."""
    mask = segment_mask(layout, logits.device)
    return logits if mask is None else logits.masked_fill(mask, float("-inf"))


class ARGenerator(nn.Module):
    """Autoregressive token transformer: class token prefix, 3-D RoPE, KV-cache sampling with CFG."""

    token_kind: ClassVar[str] = "codes"

    class Params(TransformerParams):
        pass

    class Sampling(TokenSampling):
        kv_cache: bool = Field(default=True, description="reuse keys/values of earlier tokens (same samples, faster)")

    def __init__(self, params: Params, layout: TokenLayout) -> None:
        super().__init__()
        if layout.kind != "codes":
            raise GenerationError("generator 'ar' models integer codes; these tokens are continuous latents")
        self.params, self.layout = params, layout
        self.transformer = TokenTransformer(params, layout.vocab_size, layout.vocab_size, layout.num_classes + 1)
        self.register_buffer("positions", layout.positions(), persistent=False)  # (L, 3)
        self.register_buffer("offsets", layout.vocab_offsets(), persistent=False)  # (L,)

    def logits(self, tokens: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, L, V): row i predicts token i from the class and tokens < i."""
        inputs = tokens[:, :-1] + self.offsets[:-1]
        return without_other_segments(self.transformer(inputs, self.positions[:-1], classes, causal=True), self.layout)

    def forward(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        return self.losses(batch)

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        classes = class_ids(batch.labels, self.layout)
        if self.training:
            classes = drop_classes(classes, self.layout, self.params.class_dropout)
        logits = self.logits(batch.tokens, classes)
        return {"ce": F.cross_entropy(at_least_fp32(logits.flatten(0, 1)), (batch.tokens + self.offsets).flatten())}

    def token_nll(self, batch: TokenBatch) -> torch.Tensor:
        """Negative log-likelihood (B, L) of every token in nats, conditioned on the batch's labels."""
        logits = at_least_fp32(self.logits(batch.tokens, class_ids(batch.labels, self.layout)))
        return -logits.log_softmax(-1).gather(-1, (batch.tokens + self.offsets)[..., None])[..., 0]

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> torch.Tensor:
        """Codes (B, L): ``prefix`` (B, P) kept, the rest drawn token by token."""
        s, given, classes = sampling_start(self, labels, prefix, settings)  # classes: (B or 2B,), null rows last
        batch, length = labels.shape[0], self.layout.length
        out = torch.zeros(batch, length, dtype=torch.long, device=self.positions.device)
        if prefix is not None:
            out[:, :given] = prefix
        mask = segment_mask(self.layout, out.device)
        copies = 2 if s.guided else 1

        def pick(logits: torch.Tensor, index: int) -> torch.Tensor:  # (copies·B, V) → codes (B,) in the segment
            if s.guided:
                conditional, unconditional = logits.chunk(2)
                logits = guide(conditional, unconditional, guidance_scale(s, index - given, length - given))
            if mask is not None:
                logits = logits.masked_fill(mask[index], float("-inf"))
            return draw(logits, s, generator) - self.offsets[index]

        cache = KVCache(self.params.depth) if s.kv_cache else None
        for index in range(given, length):
            if cache is None:  # the whole sequence so far, every time
                inputs = (out[:, :index] + self.offsets[:index]).repeat(copies, 1)
                logits = self.transformer(inputs, self.positions[:index], classes, causal=True)[:, -1]
            elif index == given:  # the class token and the prefix in one pass
                inputs = (out[:, :index] + self.offsets[:index]).repeat(copies, 1)
                logits = self.transformer(inputs, self.positions[:index], classes, causal=True, cache=cache)[:, -1]
            else:  # only the newest token
                newest = (out[:, index - 1 : index] + self.offsets[index - 1]).repeat(copies, 1)
                logits = self.transformer(newest, self.positions[index - 1 : index], None, causal=True, cache=cache)[:, -1]
            out[:, index] = pick(logits, index)
        return out
