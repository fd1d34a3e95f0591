"""``ldm``: a latent diffusion transformer (DiT for images, Latte for video) on a KL tokenizer's latents.

    latents (B, L, C) ─ standardise per channel (LatentScaling, fitted on the training latents)
      → grid (B, T', H', W', C) → p×p patches of each latent frame (B, T', S, p²·C) → Linear → (B, T', S, D)
      → depth × AdaLNZeroBlock conditioned per frame on c = TimestepEmbedding(level) + class embedding
        (``full`` attention over all tokens, or Latte's alternation spatial, temporal, spatial, …)
      → FinalLayer → (B, T', S, p²·C) → un-patch → prediction (B, T', H', W', C)

An image is a one-latent-frame video: the same weights run on any number of latent frames (RoPE
positions, no fixed position table). The objective is rectified flow (velocity, Euler/Heun sampling;
``omnipipe.generate.flow``) or DDPM (ε, linear 1,000 steps, DDIM sampling;
``omnipipe.generate.diffusion``). Training replaces the class by the null class with
p = ``class_dropout``; sampling applies classifier-free guidance ``u + s·(c − u)`` to *all* latent
channels of the prediction (``omnipipe.generate.guidance``).

Frame prediction: given latent frames (the ``prefix``) are put back clean before every network call
and sit at noise level 0 in their frames' conditioning; only the other frames are integrated, and the
prefix is returned bit for bit. Training teaches this with ``prefix_frames`` /
``prefix_probability`` (those frames clean, no loss on them).

Before training, ``fit_token_statistics`` must see the training latents (the generator task calls it):
the per-channel mean and std are buffers of the model, saved with its weights.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from omnipipe.generate.ar import drop_classes
from omnipipe.generate.contract import GenerationError, TokenBatch, TokenLayout, class_ids
from omnipipe.generate.diffusion import LinearDDPM
from omnipipe.generate.dit_blocks import AdaLNZeroBlock, FinalLayer, TimestepEmbedding
from omnipipe.generate.flow import RectifiedFlow
from omnipipe.generate.guidance import GuidanceSettings, guidance_scale, guide
from omnipipe.generate.latent_scaling import LatentScaling
from omnipipe.generate.transformer import TransformerParams, axial_angles
from omnipipe.nn.stack import init_weights
from omnipipe.spec.problems import SpecValueError

OBJECTIVES = {"flow": RectifiedFlow, "ddpm": LinearDDPM}
# DiT's model sizes (Peebles & Xie 2023, table 1): depth, width, heads. Latte uses the same names.
VARIANTS: dict[str, tuple[int, int, int]] = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


class LatentDiffusionGenerator(nn.Module):
    """Latent diffusion transformer (DiT/Latte, adaLN-Zero) on continuous latents: rectified flow or DDPM, CFG."""

    token_kind: ClassVar[str] = "latents"

    class Params(TransformerParams):
        variant: Literal["S", "B", "L", "XL"] | None = Field(
            default=None, description="DiT's sizes (XL: 28 blocks, width 1152, 16 heads); then leave depth, width, num_heads out"
        )
        patch_size: Literal[1, 2] = Field(default=1, description="patch side on the latent grid (DiT-XL/2: 2)")
        blocks: Literal["full", "spatial_temporal"] = Field(
            default="full", description="full: every block attends over all tokens; spatial_temporal: Latte's alternation"
        )
        objective: Literal["flow", "ddpm"] = Field(
            default="flow", description="flow: rectified flow, velocity (Euler/Heun); ddpm: ε on 1,000 linear steps (DDIM)"
        )
        prefix_frames: int = Field(default=0, ge=0, description="training: latent frames some sequences are given clean")
        prefix_probability: float = Field(
            default=0.0, ge=0, le=1, description="training: share of sequences whose first prefix_frames are given"
        )

        @model_validator(mode="after")
        def _apply_variant(self) -> LatentDiffusionGenerator.Params:
            if self.variant is not None:
                sizes = dict(zip(("depth", "width", "num_heads"), VARIANTS[self.variant]))
                clashing = sorted(key for key in sizes.keys() & self.model_fields_set if getattr(self, key) != sizes[key])
                if clashing:
                    raise SpecValueError(f"variant {self.variant} sets depth, width and num_heads; drop {', '.join(clashing)}", (clashing[0],))
                self.depth, self.width, self.num_heads = sizes.values()
            return self

    class Sampling(GuidanceSettings):
        sampler: Literal["euler", "heun", "ddim"] | None = Field(
            default=None, description="euler or heun (flow), ddim (ddpm); default: euler for flow, ddim for ddpm"
        )
        steps: int = Field(default=50, gt=0, description="integration steps (network calls: ×2 for heun, ×2 with CFG)")
        eta: float = Field(default=0.0, ge=0, le=1, description="ddim: 0 deterministic, 1 DDPM's posterior noise")

    def __init__(self, params: Params, layout: TokenLayout) -> None:
        super().__init__()
        if layout.kind != "latents":
            raise GenerationError(
                "generator 'ldm' models continuous latents, but these tokens are integer codes (a VQ tokenizer): "
                "encode with a KL tokenizer stage"
            )
        frames, height, width = layout.grid
        p = params.patch_size
        if height % p or width % p:
            raise GenerationError(f"generator 'ldm': patch_size {p} does not divide the latent grid {height}×{width}")
        if params.prefix_frames >= frames and params.prefix_probability > 0:
            raise GenerationError(f"generator 'ldm': prefix_frames {params.prefix_frames} leaves none of {frames} latent frames to generate")
        self.params, self.layout = params, layout
        self.objective = OBJECTIVES[params.objective]()
        channels, dim = layout.channels, params.width
        self.scaling = LatentScaling(channels)
        self.patch_embedding = nn.Linear(p * p * channels, dim)
        self.time_embedding = TimestepEmbedding(dim)
        self.class_embedding = nn.Embedding(layout.num_classes + 1, dim)
        scopes = ["full"] * params.depth if params.blocks == "full" else ["spatial", "temporal"] * (params.depth // 2) + ["spatial"] * (params.depth % 2)
        self.blocks = nn.ModuleList(AdaLNZeroBlock(dim, params.num_heads, params.mlp_ratio, params.dropout, scope) for scope in scopes)
        self.final = FinalLayer(dim, p * p * channels)
        init_weights(self)
        # Unit-variance class embeddings (DiT: std 0.02, over 400K steps): on a short budget the label must
        # reach the modulation as strongly as the timestep does, or guidance has nothing to amplify.
        nn.init.normal_(self.class_embedding.weight, std=1.0)
        for block in self.blocks:
            block.zero_modulation()
        self.final.zero_init()

    def fit_token_statistics(self, batches: Iterable[torch.Tensor]) -> None:
        """Fit the latent scaling on every training sequence, latents (N, L, C) per batch."""
        self.scaling.fit(batches)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T', H', W', C) → (B, T', S, p²·C), S = (H'/p)·(W'/p), patches in raster order."""
        b, t, h, w, c = x.shape
        p = self.params.patch_size
        x = x.reshape(b, t, h // p, p, w // p, p, c).permute(0, 1, 2, 4, 3, 5, 6)
        return x.reshape(b, t, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The inverse of ``patchify``: (B, T', S, p²·C) → (B, T', H', W', C)."""
        b, t = x.shape[:2]
        p = self.params.patch_size
        x = x.reshape(b, t, height // p, width // p, p, p, -1).permute(0, 1, 2, 4, 3, 5, 6)
        return x.reshape(b, t, height, width, -1)

    def predict(self, x: torch.Tensor, time: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The network: standardised noisy latents (B, T', H', W', C), per-frame levels (B, T') in [0, 1]
        (0 = clean), class indices (B,) → the objective's prediction (velocity or ε), same shape as ``x``."""
        b, t, h, w, _ = x.shape
        p = self.params.patch_size
        tokens = self.patch_embedding(self.patchify(x))  # (B, T', S, D)
        grid = torch.stack(torch.meshgrid(*(torch.arange(n, device=x.device) for n in (t, h // p, w // p)), indexing="ij"), -1)
        angles = axial_angles(grid.reshape(-1, 3), self.params.width // self.params.num_heads).reshape(t, tokens.shape[2], -1)
        c = self.time_embedding(time) + self.class_embedding(classes)[:, None]  # (B, T', D)
        for block in self.blocks:
            tokens = block(tokens, c, angles)
        return self.unpatchify(self.final(tokens, c), h, w)

    def frame_levels(self, level: torch.Tensor, given: torch.Tensor, frames: int) -> torch.Tensor:
        """Per-frame network times (B, T'): the objective's time for ``level`` (B,), 0 on the ``given`` (B,) first frames."""
        time = self.objective.network_time(level)[:, None].expand(-1, frames)
        clean = torch.arange(frames, device=level.device)[None] < given[:, None]
        return time.masked_fill(clean, 0.0)

    def forward(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        return self.losses(batch)

    def losses(self, batch: TokenBatch) -> dict[str, torch.Tensor]:
        """``mse``: the objective's regression loss on the generated frames (fp32), per-channel standardised latents."""
        if self.training and not bool(self.scaling.fitted):
            raise GenerationError("generator 'ldm': latent scaling not fitted; call fit_token_statistics on the training latents first")
        clean = self.scaling.normalize(self.layout.to_grid(batch.tokens.float()))  # (B, T', H', W', C)
        b, frames = clean.shape[:2]
        classes = class_ids(batch.labels, self.layout)
        given = torch.zeros(b, dtype=torch.long, device=clean.device)
        if self.training:
            classes = drop_classes(classes, self.layout, self.params.class_dropout)
            if self.params.prefix_probability > 0:
                chosen = torch.rand(b, device=clean.device) < self.params.prefix_probability
                given = torch.where(chosen, self.params.prefix_frames, 0)
        level = self.objective.training_levels(b, clean.device)
        noise = torch.randn_like(clean)
        generated = (torch.arange(frames, device=clean.device)[None] >= given[:, None])[..., None, None, None]  # (B, T', 1, 1, 1)
        noisy = torch.where(generated, self.objective.corrupt(clean, noise, level), clean)
        prediction = self.predict(noisy, self.frame_levels(level, given, frames), classes).float()
        error = (prediction - self.objective.target(clean, noise, level)).square() * generated
        return {"mse": error.sum() / (generated.sum() * error[0, 0].numel())}

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **settings: Any,
    ) -> torch.Tensor:
        """Latents (B, L, C) in the tokenizer's space: ``prefix`` (B, P, C) — whole latent frames — kept exactly."""
        s = self.Sampling.model_validate(settings)
        sampler = s.sampler or self.objective.default_sampler
        if sampler not in self.objective.samplers:
            raise GenerationError(
                f"sampler '{sampler}' does not fit objective '{self.params.objective}' (its samplers: {', '.join(self.objective.samplers)})"
            )
        if s.guided and not self.layout.conditional:
            raise GenerationError("classifier-free guidance needs a class-conditional model (cfg_scale must be 1)")
        device = self.class_embedding.weight.device
        frames, height, width = self.layout.grid
        batch, given = labels.shape[0], 0
        if prefix is not None:
            given, leftover = divmod(prefix.shape[1], height * width)
            if leftover or given >= frames:
                raise GenerationError(
                    f"a prefix of {prefix.shape[1]} latents is not 1 … {frames - 1} whole latent frames of {height}×{width}"
                )
            if prefix.ndim != 3 or prefix.shape[2] != self.layout.channels or not bool(torch.isfinite(prefix).all()):
                raise GenerationError(f"prefix: expected finite latents (B, P, {self.layout.channels}), got {tuple(prefix.shape)}")
        classes = class_ids(labels.to(device), self.layout)
        if s.guided:  # rows [0, B) conditional, [B, 2B) the null class
            classes = torch.cat([classes, torch.full_like(classes, self.layout.null_class)])
        shape = (batch, frames, height, width, self.layout.channels)
        noise = torch.randn(shape, generator=generator, device=device)
        clean = None if prefix is None else self.scaling.normalize(prefix.to(device).float().reshape(batch, given, height, width, -1))
        given_frames = torch.full((batch,), given, device=device)

        def network(x: torch.Tensor, level: torch.Tensor, step: int) -> torch.Tensor:
            if clean is not None:  # the given frames, clean, at every call
                x = torch.cat([clean, x[:, given:]], dim=1)
            time = self.frame_levels(level, given_frames, frames)
            if not s.guided:
                return self.predict(x, time, classes).float()
            both = self.predict(x.repeat(2, 1, 1, 1, 1), time.repeat(2, 1), classes).float()
            conditional, unconditional = both.chunk(2)
            return guide(conditional, unconditional, guidance_scale(s, step, s.steps))

        if self.params.objective == "flow":
            x = self.objective.integrate(network, noise, s.steps, sampler)
        else:
            x = self.objective.integrate(network, noise, s.steps, s.eta, generator)
        out = self.layout.from_grid(self.scaling.denormalize(x))
        if prefix is not None:
            out[:, : prefix.shape[1]] = prefix.to(out)
        return out
