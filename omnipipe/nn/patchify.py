"""Patchifier ``omni``: first frame in p×p patches, later frames in pt×p×p tubes, two linear maps each way.

Built with context ``in_channels`` (pixel channels), ``dim`` (encoder width: the embedding side) and
``out_dim`` (decoder width: the side the unpatchify heads read; defaults to ``dim``).
"""
from __future__ import annotations

import torch
from einops import rearrange
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.nn.errors import InputShapeError
from omnipipe.nn.linear import Linear


class OmniPatchifier(nn.Module):
    """Joint image–video patch embedding (causal in time: the first frame is patched on its own)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        patch_size: int = Field(default=8, gt=0, description="spatial patch side p")
        temporal_patch_size: int = Field(default=4, gt=0, description="frames per temporal patch pt")
        embed_norms: bool = Field(
            default=False,
            description="LayerNorm (eps 1e-5) on the patch vector before each embedding and on the token after it "
            "(the released OmniTokenizer's LayerNorm → Linear → LayerNorm)",
        )

    def __init__(self, params: Params, in_channels: int, dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.params = params
        self.in_channels = in_channels
        p, pt = params.patch_size, params.temporal_patch_size
        out_dim = dim if out_dim is None else out_dim
        self.embed_first = Linear(in_channels * p * p, dim)
        self.embed_rest = Linear(in_channels * pt * p * p, dim)
        self.head_first = Linear(out_dim, in_channels * p * p)
        self.head_rest = Linear(out_dim, in_channels * pt * p * p)
        for linear in (self.embed_first, self.embed_rest, self.head_first, self.head_rest):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        norms = params.embed_norms
        self.norm_first_in = nn.LayerNorm(in_channels * p * p) if norms else nn.Identity()
        self.norm_first_out = nn.LayerNorm(dim) if norms else nn.Identity()
        self.norm_rest_in = nn.LayerNorm(in_channels * pt * p * p) if norms else nn.Identity()
        self.norm_rest_out = nn.LayerNorm(dim) if norms else nn.Identity()

    def output_weight(self, frames: int) -> torch.Tensor:
        """The weight of the head that writes most pixels of a ``frames``-frame output (GAN adaptive weight)."""
        return self.head_first.weight if frames == 1 else self.head_rest.weight

    @torch.no_grad()
    def inflate_temporal_from_image(self) -> None:
        """Set the tube embedding and head from the image ones, so a static clip behaves like its first frame.

        Embedding: the image weight split evenly over the pt frames of a tube; head: the image head
        repeated for each frame. Used when joint training starts from an images-only stage. With
        ``embed_norms`` the tube's input norm repeats the image one per frame (a repeated vector has
        the same mean and variance) and the output norm is copied.
        """
        p, pt, c = self.params.patch_size, self.params.temporal_patch_size, self.in_channels
        embed = self.embed_first.weight.view(-1, c, 1, p * p) / pt  # (D, C, 1, p²)
        self.embed_rest.weight.copy_(embed.expand(-1, c, pt, p * p).reshape_as(self.embed_rest.weight))
        self.embed_rest.bias.copy_(self.embed_first.bias)
        if self.params.embed_norms:
            for name in ("weight", "bias"):
                image = getattr(self.norm_first_in, name).view(c, 1, p * p)
                getattr(self.norm_rest_in, name).copy_(image.expand(c, pt, p * p).flatten())
                getattr(self.norm_rest_out, name).copy_(getattr(self.norm_first_out, name))
        head = self.head_first.weight.view(c, 1, p * p, -1)  # (C, 1, p², D)
        self.head_rest.weight.copy_(head.expand(c, pt, p * p, -1).reshape_as(self.head_rest.weight))
        self.head_rest.bias.copy_(self.head_first.bias.view(c, 1, p * p).expand(c, pt, p * p).flatten())

    def check(self, x: torch.Tensor) -> None:
        """Raise InputShapeError unless ``x`` is (B, C, T, H, W) with T = 1 + k·pt and H, W multiples of p."""
        p, pt = self.params.patch_size, self.params.temporal_patch_size
        shape = tuple(x.shape)
        if x.ndim != 5 or shape[1] != self.in_channels:
            raise InputShapeError(f"pixels of shape {shape}: expected (B, C={self.in_channels}, T, H, W)")
        t, h, w = shape[2:]
        if t < 1 or (t - 1) % pt != 0:
            raise InputShapeError(f"pixels of shape {shape}: T={t} frames, but T must be 1 or 1 + k·{pt} (k ≥ 1)")
        if h % p or w % p:
            raise InputShapeError(f"pixels of shape {shape}: H={h} and W={w} must both be multiples of {p}")

    def latent_grid(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        """(T', H', W') of the latents for ``t`` frames of ``h``×``w`` pixels."""
        p, pt = self.params.patch_size, self.params.temporal_patch_size
        return 1 + (t - 1) // pt, h // p, w // p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, T, H, W) → tokens (B, T', H', W', dim)."""
        self.check(x)
        p = self.params.patch_size
        first = rearrange(x[:, :, :1], "b c 1 (h p1) (w p2) -> b 1 h w (c p1 p2)", p1=p, p2=p)
        tokens = [self.norm_first_out(self.embed_first(self.norm_first_in(first)))]  # (B, 1, H', W', D)
        if x.shape[2] > 1:
            tokens.append(self.embed_tubes(x[:, :, 1:]))  # (B, k, H', W', D)
        return torch.cat(tokens, dim=1)

    def embed_tubes(self, x: torch.Tensor) -> torch.Tensor:
        """Frames that follow a video's first frame (B, C, k·pt, H, W) → their tubes' tokens (B, k, H', W', dim)."""
        p, pt = self.params.patch_size, self.params.temporal_patch_size
        rest = rearrange(x, "b c (t q) (h p1) (w p2) -> b t h w (c q p1 p2)", q=pt, p1=p, p2=p)
        return self.norm_rest_out(self.embed_rest(self.norm_rest_in(rest)))

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder tokens (B, T', H', W', out_dim) → pixels (B, C, T, H, W)."""
        p, c = self.params.patch_size, self.in_channels
        first = rearrange(self.head_first(tokens[:, :1]), "b 1 h w (c p1 p2) -> b c 1 (h p1) (w p2)", c=c, p1=p, p2=p)
        if tokens.shape[1] == 1:
            return first
        return torch.cat([first, self.unpatchify_tubes(tokens[:, 1:])], dim=2)

    def unpatchify_tubes(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens of latent frames after the first (B, k, H', W', out_dim) → their pixels (B, C, k·pt, H, W)."""
        p, pt, c = self.params.patch_size, self.params.temporal_patch_size, self.in_channels
        return rearrange(self.head_rest(tokens), "b t h w (c q p1 p2) -> b c (t q) (h p1) (w p2)", c=c, q=pt, p1=p, p2=p)
