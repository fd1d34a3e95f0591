"""``masked``: a bidirectional transformer that fills in masked tokens (MaskGIT), a few parallel steps per sample.

Training masks a cosine-distributed share of each sequence (ratio = cos(π/2 · r), r ~ U(0, 1), at
least one token) and predicts the masked tokens from the rest and the class (null class with
p = ``class_dropout``). Sampling starts from all generated positions masked; at step s of N it draws
every masked token, keeps the most confident ones and masks again the
``floor(n · cos(π/2 · (s + 1)/N))`` least confident (at least one fewer each step, none after the
last), confidence = log-probability + annealed choice temperature × Gumbel noise. A given prefix
(frame prediction: the first latent frames) is never masked.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnipipe.generate.ar import drop_classes, without_other_segments
from omnipipe.generate.contract import GenerationError, TokenBatch, TokenLayout, class_ids
from omnipipe.generate.guidance import guidance_scale, guide
from omnipipe.generate.sampling import TokenSampling, at_least_fp32, draw_codes, sampling_log_probs, sampling_start
from omnipipe.generate.transformer import TokenTransformer, TransformerParams


def masked_counts(generated: int, steps: int) -> list[int]:
    """Tokens still masked after each of ``steps`` steps when ``generated`` tokens are to be drawn (cosine schedule)."""
    counts, previous = [], generated
    for step in range(steps):
        planned = math.floor(generated * math.cos(math.pi / 2 * (step + 1) / steps))
        previous = 0 if step == steps - 1 else max(0, min(planned, previous - 1))
        counts.append(previous)
    return counts


def gumbel(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    uniform = torch.rand(shape, generator=generator, device=device).clamp_(1e-20, 1.0)
    return -torch.log((-torch.log(uniform)).clamp_(min=1e-20))


class MaskedGenerator(nn.Module):
    """Masked token transformer (MaskGIT): cosine schedule, parallel decoding, CFG, frame prediction."""

    token_kind: ClassVar[str] = "codes"

    class Params(TransformerParams):
        prefix_frames: int = Field(default=0, ge=0, description="training: latent frames some sequences keep unmasked")
        prefix_probability: float = Field(
            default=0.0, ge=0, le=1, description="training: share of sequences whose first prefix_frames stay unmasked"
        )

    class Sampling(TokenSampling):
        steps: int = Field(default=8, gt=0, description="parallel decoding steps (MaskGIT: 8 images, 12 video)")
        choice_temperature: float = Field(default=4.5, ge=0, description="Gumbel noise on confidences, annealed to 0")

    def __init__(self, params: Params, layout: TokenLayout) -> None:
        super().__init__()
        if layout.kind != "codes":
            raise GenerationError("generator 'masked' models integer codes; these tokens are continuous latents")
        self.params, self.layout = params, layout
        self.mask_token = layout.vocab_size
        self.transformer = TokenTransformer(
            params, layout.vocab_size + 1, layout.vocab_size, layout.num_classes + 1, learned_positions=layout.length
        )
        self.register_buffer("positions", layout.positions(), persistent=False)  # (L, 3)
        self.register_buffer("offsets", layout.vocab_offsets(), persistent=False)  # (L,)
        self.train_prefix = layout.prefix_length(params.prefix_frames) if params.prefix_frames else 0

    def logits(self, inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, V) of every position given ``inputs`` (B, L): shared-table ids or the mask token."""
        return self.transformer(inputs, self.positions, classes, causal=False)[:, 1:]

    def forward(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        return self.losses(batch)

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        tokens = batch.tokens + self.offsets  # (B, L)
        b, length = tokens.shape
        classes = class_ids(batch.labels, self.layout)
        if self.training:
            classes = drop_classes(classes, self.layout, self.params.class_dropout)
        given = torch.zeros(b, dtype=torch.long, device=tokens.device)
        if self.train_prefix:
            chosen = torch.rand(b, device=tokens.device) < self.params.prefix_probability
            given = torch.where(chosen, self.train_prefix, 0)
        eligible = length - given  # (B,)
        ratio = torch.cos(math.pi / 2 * torch.rand(b, device=tokens.device))
        count = torch.ceil(ratio * eligible).clamp(min=1).long()  # tokens to mask per row
        scores = torch.rand(b, length, device=tokens.device)
        scores = scores.masked_fill(torch.arange(length, device=tokens.device) < given[:, None], 2.0)  # prefix last
        rank = scores.argsort(-1).argsort(-1)
        masked = rank < count[:, None]  # (B, L)
        logits = without_other_segments(self.logits(tokens.masked_fill(masked, self.mask_token), classes), self.layout)
        return {"ce": F.cross_entropy(at_least_fp32(logits[masked]), tokens[masked])}

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> torch.Tensor:
        """Codes (B, L): ``prefix`` (B, P) kept, the other L − P filled in ``steps`` parallel steps."""
        s, given, classes = sampling_start(self, labels, prefix, settings)  # classes: (B or 2B,), null rows last
        device = self.positions.device
        batch, length = labels.shape[0], self.layout.length
        inputs = torch.full((batch, length), self.mask_token, dtype=torch.long, device=device)
        if prefix is not None:
            inputs[:, :given] = prefix.to(device) + self.offsets[:given]
        unknown = torch.arange(length, device=device).expand(batch, length) >= given  # (B, L)
        for step, remaining in enumerate(masked_counts(length - given, s.steps)):
            if not bool(unknown.any()):
                break
            logits = self.logits(inputs.repeat(2 if s.guided else 1, 1), classes)
            if s.guided:
                conditional, unconditional = logits.chunk(2)
                logits = guide(conditional, unconditional, guidance_scale(s, step, s.steps))
            log_probs = sampling_log_probs(without_other_segments(logits, self.layout), s)  # (B, L, V)
            drawn = torch.where(unknown, draw_codes(log_probs, generator), inputs)
            confidence = log_probs.gather(-1, drawn[..., None])[..., 0]
            annealed = s.choice_temperature * (1 - (step + 1) / s.steps)
            confidence = confidence + annealed * gumbel(confidence.shape, generator, device)
            confidence = confidence.masked_fill(~unknown, float("inf"))
            unknown = confidence.argsort(-1).argsort(-1) < remaining  # the least confident stay masked
            inputs = torch.where(unknown, self.mask_token, drawn)
        return inputs - self.offsets
