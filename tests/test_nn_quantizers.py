"""Quantizers ``vq`` and ``kl`` against hand computations and closed forms."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omnipipe.nn.components import register
from omnipipe.nn.kl import DiagonalGaussian, gaussian_kl
from omnipipe.nn.quantizer_output import Quantizer
import omnipipe.nn.vq as vq_module
from omnipipe.nn.vq import VectorQuantizer
from omnipipe.registry import Registry
from omnipipe.spec.component import ParamsError


def identity_vq(codebook: torch.Tensor, **params: object) -> VectorQuantizer:
    """A VQ whose projection in is the identity, so inputs land on the codebook directly (float64)."""
    k, d = codebook.shape
    vq = VectorQuantizer(VectorQuantizer.Params(codebook_size=k, code_dim=d, **params), dim=d).double()
    with torch.no_grad():
        vq.proj_in.weight.copy_(torch.eye(d))
        vq.proj_in.bias.zero_()
        vq.codebook.copy_(codebook)
        if vq.params.update == "ema":
            vq.embed_sum.copy_(codebook)
    return vq


CODES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)


def as_latents(vectors: list[list[float]]) -> torch.Tensor:
    return torch.tensor(vectors, dtype=torch.float64).view(1, 1, 1, -1, 2)  # (B, T', H', W', d)


def test_registered_and_built_through_the_registry() -> None:
    registry = Registry()
    register(registry)
    vq = registry.build("quantizer", {"type": "vq", "codebook_size": 16, "code_dim": 4}, dim=8)
    kl = registry.build("quantizer", {"type": "kl", "latent_channels": 3}, dim=8)
    assert isinstance(vq, Quantizer) and vq.codebook_size == 16
    assert isinstance(kl, Quantizer) and kl.codebook_size is None
    with pytest.raises(ParamsError, match="codebook_sise"):
        registry.build("quantizer", {"type": "vq", "codebook_sise": 16}, dim=8)


def test_usage_and_perplexity_on_a_constructed_batch() -> None:
    vq = identity_vq(CODES, l2_normalize=False).eval()
    out = vq(as_latents([[1, 0], [1, 0], [1, 0], [0, 1]]))  # counts (3, 1, 0, 0)
    assert out.codes.flatten().tolist() == [0, 0, 0, 1]
    assert out.stats["usage"].item() == pytest.approx(0.5)
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert out.stats["perplexity"].item() == pytest.approx(math.exp(entropy))
    uniform = vq(as_latents([[1, 0], [0, 1], [-1, 0], [0, -1]]))
    assert uniform.stats["usage"].item() == 1.0 and uniform.stats["perplexity"].item() == pytest.approx(4.0)


def test_lookup_output_commitment_and_decode_codes() -> None:
    vq = identity_vq(CODES, l2_normalize=False, beta=0.25).eval()
    z = as_latents([[0.9, 0.2], [-0.1, -2.0]])
    out = vq(z)
    assert out.codes.flatten().tolist() == [0, 3]
    expected_commitment = 0.25 * ((z.flatten() - torch.tensor([1.0, 0, 0, -1], dtype=torch.float64)) ** 2).mean()
    torch.testing.assert_close(out.losses["commitment"], expected_commitment)
    assert set(out.losses) == {"commitment"}
    torch.testing.assert_close(out.z_q, vq.proj_out(CODES[[0, 3]]).view(1, 1, 1, 2, -1))
    torch.testing.assert_close(vq.decode_codes(out.codes), out.z_q)


def test_cosine_lookup_uses_directions() -> None:
    vq = identity_vq(CODES * torch.tensor([[3.0], [1.0], [1.0], [1.0]], dtype=torch.float64)).eval()
    out = vq(as_latents([[0.1, 0.5], [5.0, 0.2]]))  # near (0, 1) in direction although closer to code 0's norm
    assert out.codes.flatten().tolist() == [1, 0]


def test_straight_through_gradient_reaches_the_input() -> None:
    """z_q's gradient w.r.t. z equals that of the un-quantized path proj_out(normalize(proj_in(z)))."""
    torch.manual_seed(0)
    vq = VectorQuantizer(VectorQuantizer.Params(codebook_size=32, code_dim=4), dim=8).double()
    z = torch.randn(2, 1, 3, 3, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 1, 3, 3, 8, dtype=torch.float64)
    (vq(z).z_q * weight).sum().backward()
    z_ref = z.detach().clone().requires_grad_(True)
    (vq.proj_out(F.normalize(vq.proj_in(z_ref), dim=-1)) * weight).sum().backward()
    assert z.grad.abs().sum() > 0
    torch.testing.assert_close(z.grad, z_ref.grad)


def test_ema_update_matches_hand_computation() -> None:
    vq = identity_vq(CODES, l2_normalize=False, decay=0.9, eps=1e-5, dead_code_threshold=0.0).train()
    x = [[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]]  # codes 0, 0 (tie → first), 1
    out = vq(as_latents(x))
    assert out.codes.flatten().tolist() == [0, 0, 1]
    counts = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    sums = torch.tensor([[3.0, 1.0], [0.0, 3.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    cluster = 0.9 * torch.ones(4, dtype=torch.float64) + 0.1 * counts
    embed_sum = 0.9 * CODES + 0.1 * sums
    total = cluster.sum()
    smoothed = (cluster + 1e-5) / (total + 4 * 1e-5) * total
    torch.testing.assert_close(vq.cluster_size, cluster)
    torch.testing.assert_close(vq.embed_sum, embed_sum)
    torch.testing.assert_close(vq.codebook, embed_sum / smoothed[:, None])
    torch.testing.assert_close(out.z_q, vq.proj_out(CODES[[0, 0, 1]]).view(1, 1, 1, 3, 2))  # old codebook


def test_sync_fn_sees_the_batch_statistics_before_they_are_applied() -> None:
    vq = identity_vq(CODES, l2_normalize=False, decay=0.5, dead_code_threshold=0.0).train()
    seen: list[torch.Tensor] = []
    vq.sync_fn = lambda t: (seen.append(t.clone()), t * 2)[1]  # as if a second rank saw the same batch
    vq(as_latents([[2.0, 0.0], [0.0, 3.0]]))
    torch.testing.assert_close(seen[0], torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(seen[1][:2], torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64))
    torch.testing.assert_close(vq.cluster_size, torch.tensor([1.5, 1.5, 0.5, 0.5], dtype=torch.float64))


def test_dead_codes_are_restarted_from_the_batch() -> None:
    torch.manual_seed(0)
    vq = identity_vq(CODES, l2_normalize=False, decay=0.5, dead_code_threshold=0.3).train()
    batch = [[1.0, 0.1], [0.9, -0.1], [1.1, 0.0]]  # all nearest to code 0
    first = vq(as_latents(batch))
    assert first.stats["restarted"].item() == 0  # unused codes decayed to 0.5 ≥ 0.3
    second = vq(as_latents(batch))
    assert second.stats["restarted"].item() == 3  # 0.25 < 0.3: codes 1, 2, 3 restart
    candidates = torch.tensor(batch, dtype=torch.float64)
    for code in vq.codebook[1:]:
        assert any(torch.equal(code, c) for c in candidates)
    torch.testing.assert_close(vq.embed_sum[1:], vq.codebook[1:])
    torch.testing.assert_close(vq.cluster_size[1:], torch.ones(3, dtype=torch.float64))
    third = vq(as_latents(batch))
    assert third.stats["usage"].item() > 0.25  # the restarted codes now take part of the batch


def test_loss_update_mode_trains_the_codebook() -> None:
    vq = identity_vq(CODES, l2_normalize=False, update="loss").train()
    assert isinstance(vq.codebook, torch.nn.Parameter)
    out = vq(as_latents([[0.5, 0.0]]))
    torch.testing.assert_close(out.losses["codebook"], torch.tensor(0.125, dtype=torch.float64))
    out.losses["codebook"].backward()
    assert vq.codebook.grad[0].abs().sum() > 0 and vq.codebook.grad[1:].abs().sum() == 0


def test_lookup_runs_in_fp32_under_bf16_autocast() -> None:
    torch.manual_seed(1)
    vq = VectorQuantizer(VectorQuantizer.Params(codebook_size=64, code_dim=4), dim=16).eval()
    z = torch.randn(2, 1, 4, 4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = vq(z)
    plain = vq(z)
    assert torch.equal(auto.codes, plain.codes) and auto.z_q.dtype == torch.float32


@pytest.mark.parametrize("l2_normalize", [True, False])
def test_nearest_in_blocks_is_the_brute_force_nearest_code(l2_normalize: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows in blocks of NEAREST_BLOCK // 64 codes = 16 (four of 16 rows, one of 6): the float64 nearest code of every row."""
    monkeypatch.setattr(vq_module, "NEAREST_BLOCK", 16 * 64 + 7)
    generator = torch.Generator().manual_seed(3)
    vq = VectorQuantizer(VectorQuantizer.Params(codebook_size=64, code_dim=4, l2_normalize=l2_normalize), dim=4)
    flat, table = torch.randn(70, 4, generator=generator), vq.lookup_table().detach()
    flat = F.normalize(flat, dim=-1) if l2_normalize else flat
    expected = torch.cdist(flat.double(), table.double()).argmin(dim=-1)
    assert torch.equal(vq.nearest(flat, table), expected)


def test_kl_is_the_closed_form_summed_over_latent_elements_and_averaged_over_the_batch() -> None:
    torch.manual_seed(2)
    kl = DiagonalGaussian(DiagonalGaussian.Params(latent_channels=3, kl_weight=0.5), dim=8).double()
    z = torch.randn(2, 2, 3, 3, 8, dtype=torch.float64)
    mean, logvar = kl.proj_in(z).chunk(2, dim=-1)
    std = (0.5 * logvar).exp()
    closed = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(torch.zeros_like(mean), 1.0)
    ).sum(dim=(1, 2, 3, 4)).mean()  # per sample: over T', H', W' and channels (the reference's reduction)
    torch.testing.assert_close(gaussian_kl(mean, logvar), closed)
    twice = torch.cat([z, z], dim=1)  # twice the latent frames: twice the KL per sample, at the same weight
    torch.testing.assert_close(kl.eval()(twice).stats["kl"], 2 * closed)
    evaluated = kl.eval()(z)
    assert evaluated.codes is None
    torch.testing.assert_close(evaluated.losses["kl"], 0.5 * closed)
    torch.testing.assert_close(evaluated.stats["kl"], closed)
    torch.testing.assert_close(evaluated.latents, mean)
    torch.testing.assert_close(evaluated.z_q, kl.proj_out(mean))
    torch.testing.assert_close(kl.decode_codes(evaluated.latents), evaluated.z_q)
    torch.manual_seed(3)
    sampled = kl.train()(z).latents
    torch.manual_seed(3)
    noise = torch.randn_like(mean)
    torch.testing.assert_close(sampled, mean + std * noise)
