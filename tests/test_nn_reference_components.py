"""The reference-compatible options of the network components, each against a brute-force computation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omnipipe.nn.alibi import alibi_slopes
from omnipipe.nn.block import Block
from omnipipe.nn.kl import DiagonalGaussian
from omnipipe.nn.patchify import OmniPatchifier
from omnipipe.nn.position_conv import ConvPositionEncoding
from omnipipe.nn.relative_position import relative_position_index
from omnipipe.nn.rope import apply_interleaved_rope, interleaved_spatial_angles
from omnipipe.nn.spatial_attention import FullAttention, WindowAttention
from omnipipe.nn.stack import Stack
from omnipipe.nn.temporal_attention import CausalAttention
from omnipipe.nn.components import register
from omnipipe.nn.vq import VectorQuantizer
from omnipipe.registry import Registry
from omnipipe.spec.model import StackSpec

DIM, HEADS = 16, 2
COSINE = {"qk_norm": "cosine", "logit_scale": 8.0, "qkv_bias": False, "proj_bias": False}


def coords(t: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tt, yy, xx = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    return tt.flatten(), yy.flatten(), xx.flatten()


def randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Replace every parameter by seeded noise (so scales, biases and tables all matter), float64."""
    generator = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5 + (1 if p.ndim == 1 else 0))
    return module


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, bias: torch.Tensor) -> torch.Tensor:
    """softmax(scale · q kᵀ + bias) v over flattened tokens; q, k, v (N, heads, hd), bias (heads, N, N) with -inf."""
    scores = torch.einsum("ind,jnd->nij", q, k) * scale + bias
    return torch.einsum("nij,jnd->ind", scores.softmax(-1), v)


def test_interleaved_rope_matches_complex_rotation_by_column_then_row() -> None:
    """Pair j of a head: x[2j] + i·x[2j+1] times exp(i·pos·θ_(j//2)), pos = column for even j, row for odd j."""
    hd, h, w = 8, 3, 5
    x = torch.randn(h, w, hd, dtype=torch.float64)
    rotated = apply_interleaved_rope(x, interleaved_spatial_angles(h, w, hd, torch.device("cpu")))
    theta = 10000.0 ** (-torch.arange(0, hd, 4, dtype=torch.float64) / hd)  # (hd/4,)
    for y in range(h):
        for c in range(w):
            z = torch.view_as_complex(x[y, c].reshape(-1, 2).contiguous())
            positions = torch.tensor([c, y] * (hd // 4), dtype=torch.float64)
            angles = positions * theta.repeat_interleave(2)
            expected = torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten()
            torch.testing.assert_close(rotated[y, c], expected)


@pytest.mark.parametrize("rope", ["interleaved", "none"])
def test_cosine_full_attention_on_a_non_square_grid(rope: str) -> None:
    module = randomize(FullAttention(FullAttention.Params(rope=rope, **COSINE), dim=DIM, num_heads=HEADS), 0)
    x = torch.randn(2, 2, 3, 5, DIM, dtype=torch.float64)
    out = module(x)
    assert module.qkv.bias is None and module.proj.bias is None
    q, k, v = module.qkv(x).unflatten(-1, (3, HEADS, DIM // HEADS)).unbind(-3)  # (B, T, H, W, heads, hd)
    if rope == "interleaved":
        angles = interleaved_spatial_angles(3, 5, DIM // HEADS, torch.device("cpu"))[:, :, None]
        q, k = apply_interleaved_rope(q, angles), apply_interleaved_rope(k, angles)
    q = q / q.norm(dim=-1, keepdim=True) * module.q_scale
    k = k / k.norm(dim=-1, keepdim=True) * module.k_scale
    for b in range(2):
        for t in range(2):
            mixed = dense_attention(q[b, t].flatten(0, 1), k[b, t].flatten(0, 1), v[b, t].flatten(0, 1), 8.0, 0.0)
            torch.testing.assert_close(out[b, t], module.proj(mixed.flatten(-2)).view(3, 5, DIM))


@pytest.mark.parametrize(("h", "w", "ws"), [(8, 8, 4), (6, 10, 4), (5, 3, 2)])
def test_window_relative_bias_is_the_table_entry_of_each_offset(h: int, w: int, ws: int) -> None:
    params = WindowAttention.Params(window_size=ws, rope="none", relative_bias=True, qkv_bias=False)
    module = randomize(WindowAttention(params, dim=DIM, num_heads=HEADS), 1)
    x = torch.randn(1, 2, h, w, DIM, dtype=torch.float64)
    tt, yy, xx = coords(2, h, w)
    same = (tt[:, None] == tt[None]) & (yy[:, None] // ws == yy[None] // ws) & (xx[:, None] // ws == xx[None] // ws)
    table = module.relative_bias.table  # ((2ws-1)², heads)
    offset = (yy[:, None] - yy[None] + ws - 1) * (2 * ws - 1) + (xx[:, None] - xx[None] + ws - 1)  # (N, N)
    bias = table[offset.clamp(0, table.shape[0] - 1)].permute(2, 0, 1).masked_fill(~same, float("-inf"))
    q, k, v = module.project(x)
    mixed = dense_attention(*(a.flatten(0, 3) for a in (q, k, v)), (DIM // HEADS) ** -0.5, bias)
    torch.testing.assert_close(module(x), module.proj(mixed.flatten(-2)).view_as(x))


def test_relative_position_index_is_swin_layout() -> None:
    index = relative_position_index(2)  # tokens (0,0), (0,1), (1,0), (1,1); 3×3 offsets table
    assert index[0].tolist() == [4, 3, 1, 0] and index[3].tolist() == [8, 7, 5, 4]


def test_causal_peg_never_sees_later_frames_and_centered_does() -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 4, 3, 5, DIM)
    later = x.clone()
    later[:, 2:] += 1.0
    causal = ConvPositionEncoding(DIM, "causal")
    torch.testing.assert_close(causal(x)[:, :2], causal(later)[:, :2], rtol=0, atol=0)
    assert not torch.allclose(causal(x)[:, 2:], causal(later)[:, 2:])
    centered = ConvPositionEncoding(DIM, "centered")
    assert not torch.allclose(centered(x)[:, 1], centered(later)[:, 1])


def test_peg_is_a_depthwise_conv_with_zero_padding() -> None:
    torch.manual_seed(3)
    peg = ConvPositionEncoding(4, "causal").double()
    x = torch.randn(1, 3, 2, 3, 4, dtype=torch.float64)
    out = peg(x)
    weight, bias = peg.conv.weight[:, 0], peg.conv.bias  # (D, 3, 3, 3)
    t, y, c = 2, 1, 2
    expected = bias.clone()
    for dt in range(3):
        for dy in range(3):
            for dx in range(3):
                st, sy, sx = t + dt - 2, y + dy - 1, c + dx - 1  # causal: kernel covers frames t-2..t
                if 0 <= st < 3 and 0 <= sy < 2 and 0 <= sx < 3:
                    expected = expected + weight[:, dt, dy, dx] * x[0, st, sy, sx]
    torch.testing.assert_close(out[0, t, y, c], expected)


def test_reference_temporal_order_reads_hwt_memory_as_thw() -> None:
    torch.manual_seed(4)
    plain = ConvPositionEncoding(DIM, "causal")
    scrambled = ConvPositionEncoding(DIM, "causal", order="reference_temporal")
    scrambled.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 2, 4, DIM)  # (B, T, H, W, D)
    b, t, h, w, d = x.shape
    as_read = x.permute(0, 2, 3, 1, 4).reshape(b, t, h, w, d)
    expected = plain(as_read).reshape(b, h, w, t, d).permute(0, 3, 1, 2, 4)
    torch.testing.assert_close(scrambled(x), expected)
    torch.testing.assert_close(scrambled(x[:, :1]), plain(x[:, :1]))  # one frame: nothing to scramble


def test_kv_from_block_input_projects_keys_and_values_before_the_norm() -> None:
    params = CausalAttention.Params(rope=False, kv_prenorm=False, **COSINE)
    attn = randomize(CausalAttention(params, dim=DIM, num_heads=HEADS), 5)
    block = Block(attn, DIM, "geglu", 4.0, "layernorm_nobias", 0.0, mlp_norm="layernorm", norm_eps=1e-5, mlp_bias=False).double()
    x = torch.randn(1, 3, 2, 2, DIM, dtype=torch.float64)
    normed = F.layer_norm(x, (DIM,), block.norm1.weight, None, 1e-5)
    hd = DIM // HEADS
    q = (normed @ attn.qkv.weight[:DIM].T).unflatten(-1, (HEADS, hd))
    k, v = (x @ attn.qkv.weight[DIM:].T).unflatten(-1, (2, HEADS, hd)).unbind(-3)
    q, k = F.normalize(q, dim=-1) * attn.q_scale, F.normalize(k, dim=-1) * attn.k_scale
    tt, yy, xx = coords(3, 2, 2)
    allowed = (yy[:, None] == yy[None]) & (xx[:, None] == xx[None]) & (tt[None] <= tt[:, None])
    bias = torch.zeros(HEADS, 12, 12, dtype=torch.float64).masked_fill(~allowed, float("-inf"))
    mixed = dense_attention(q.flatten(0, 3), k.flatten(0, 3), v.flatten(0, 3), 8.0, bias)
    after_attn = x + attn.proj(mixed.flatten(-2)).view_as(x)
    expected = after_attn + block.mlp(F.layer_norm(after_attn, (DIM,), block.norm2.weight, block.norm2.bias, 1e-5))
    torch.testing.assert_close(block(x), expected)
    torch.testing.assert_close(block(x[:, :1]), expected[:, :1])  # the single-frame shortcut agrees


def test_per_group_final_norm_and_mlp_options() -> None:
    registry = Registry()
    register(registry)
    spec = StackSpec(
        width=DIM, num_heads=HEADS, spatial=[{"type": "full"}], temporal=[{"type": "causal"}] * 2, mlp="geglu",
        mlp_hidden=7, mlp_bias=False, norm="layernorm_nobias", final_norm="per_group",
    )
    for spec_entry in (*spec.spatial, *spec.temporal):
        spec_entry.resolve(registry)
    encoder, decoder = Stack(spec, registry), Stack(spec, registry, temporal_first=True)
    assert encoder.first_group_size == 1 and decoder.first_group_size == 2
    assert encoder.blocks[0].mlp.fc_in.weight.shape == (14, DIM) and encoder.blocks[0].mlp.fc_in.bias is None
    assert encoder.norm.bias is None and encoder.group_norm.bias is None
    with torch.no_grad():
        encoder.group_norm.weight.fill_(3.0)
    x = torch.randn(1, 2, 2, 2, DIM)
    h = encoder.blocks[0](x)
    h = F.layer_norm(h, (DIM,), encoder.group_norm.weight, None, 1e-6)
    h = encoder.norm(encoder.blocks[2](encoder.blocks[1](h)))
    torch.testing.assert_close(encoder(x), h)


def test_embed_norms_inflation_keeps_static_clips_equal_to_their_first_frame() -> None:
    params = OmniPatchifier.Params(patch_size=4, temporal_patch_size=2, embed_norms=True)
    patchifier = randomize(OmniPatchifier(params, in_channels=3, dim=DIM), 6)
    patchifier.inflate_temporal_from_image()
    image = torch.randn(1, 3, 1, 8, 12, dtype=torch.float64)
    tokens = patchifier(image.expand(-1, -1, 5, -1, -1))  # (1, 3, 2, 3, DIM)
    torch.testing.assert_close(tokens[:, 1:], tokens[:, :1].expand(-1, 2, -1, -1, -1))
    raw = image[0, :, 0, :4, :4].flatten()
    expected = F.layer_norm(raw, raw.shape, patchifier.norm_first_in.weight, patchifier.norm_first_in.bias)
    expected = F.layer_norm(patchifier.embed_first(expected), (DIM,), patchifier.norm_first_out.weight, patchifier.norm_first_out.bias)
    torch.testing.assert_close(tokens[0, 0, 0, 0], expected)


def test_vq_with_raw_codebook_takes_squared_l2_nearest_to_the_unit_input() -> None:
    torch.manual_seed(7)
    params = VectorQuantizer.Params(codebook_size=32, code_dim=4, l2_normalize=True, normalize_codebook=False)
    vq = VectorQuantizer(params, dim=6).double().eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(32, 4, dtype=torch.float64) * torch.rand(32, 1, dtype=torch.float64) * 2)
    z = torch.randn(2, 1, 3, 3, 6, dtype=torch.float64)
    with torch.no_grad():
        out = vq(z)
        unit = F.normalize(vq.proj_in(z), dim=-1).reshape(-1, 4)
    brute = [min(range(32), key=lambda j: float(((u - vq.codebook[j]) ** 2).sum())) for u in unit]
    assert out.codes.flatten().tolist() == brute
    with torch.no_grad():
        torch.testing.assert_close(vq.decode_codes(out.codes), vq.proj_out(vq.codebook[out.codes]))
    assert not torch.allclose(vq.codebook.norm(dim=-1), torch.ones(32, dtype=torch.float64))


def test_kl_batch_mean_sums_latent_elements_per_sample() -> None:
    torch.manual_seed(8)
    z = torch.randn(3, 2, 2, 4, 6)
    module = DiagonalGaussian(DiagonalGaussian.Params(latent_channels=5, kl_weight=1.0, reduction="batch_mean"), dim=6).eval()
    mean, logvar = module.proj_in(z).chunk(2, dim=-1)
    total = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum()
    torch.testing.assert_close(module(z).losses["kl"], total / 3)
    assert math.isclose(module(z).stats["kl"].item(), total.item() / 3, rel_tol=1e-5)
    module.params = DiagonalGaussian.Params(latent_channels=5, kl_weight=1.0, reduction="position_mean")
    torch.testing.assert_close(module(z).losses["kl"], total / (3 * 2 * 2 * 4))


def test_continuous_position_bias_maps_log_offsets_through_the_mlp() -> None:
    params = FullAttention.Params(rope="none", position_bias="continuous", **COSINE)
    module = randomize(FullAttention(params, dim=DIM, num_heads=HEADS), 9)
    h, w = 2, 3
    bias = module.position_bias(h, w, torch.device("cpu"))  # (heads, 6, 6)
    _, yy, xx = coords(1, h, w)
    for i in range(h * w):
        for j in range(h * w):
            offset = torch.tensor([yy[i] - yy[j], xx[i] - xx[j]], dtype=torch.float64)
            torch.testing.assert_close(bias[:, i, j], module.position_bias.net(offset.sign() * torch.log1p(offset.abs())))
    x = torch.randn(1, 1, h, w, DIM, dtype=torch.float64)
    q, k, v = module.project(x)
    mixed = dense_attention(*(a.flatten(0, 3) for a in (q, k, v)), 8.0, bias)
    torch.testing.assert_close(module(x), module.proj(mixed.flatten(-2)).view_as(x))


def test_alibi_slopes_and_causal_attention_with_alibi() -> None:
    assert alibi_slopes(8) == [2.0 ** -(i + 1) for i in range(8)]
    assert alibi_slopes(6) == [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]
    module = randomize(CausalAttention(CausalAttention.Params(rope=False, alibi=True, **COSINE), dim=DIM, num_heads=HEADS), 10)
    x = torch.randn(1, 4, 1, 2, DIM, dtype=torch.float64)
    tt, yy, xx = coords(4, 1, 2)
    allowed = (xx[:, None] == xx[None]) & (tt[None] <= tt[:, None])
    slopes = torch.tensor(alibi_slopes(HEADS), dtype=torch.float64)[:, None, None]
    bias = (-slopes * (tt[:, None] - tt[None]).abs()).masked_fill(~allowed, float("-inf"))
    q, k, v = module.project(x)
    mixed = dense_attention(*(a.flatten(0, 3) for a in (q, k, v)), 8.0, bias)
    torch.testing.assert_close(module(x), module.proj(mixed.flatten(-2)).view_as(x))
