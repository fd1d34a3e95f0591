"""The builtin generators ``ar`` and ``masked``: values, not only shapes."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from omnipipe.generate.ar import ARGenerator
from omnipipe.generate.contract import GenerationError, Segment, TokenBatch, TokenLayout
from omnipipe.generate.masked import MaskedGenerator, masked_counts
from omnipipe.generate.sampling import filter_logits
from omnipipe.generate.transformer import TransformerParams

SMALL = {"width": 32, "depth": 2, "num_heads": 2}


def _scrambled(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights large enough that logits are far from uniform (fresh heads start at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def _ar(layout: TokenLayout, seed: int = 0) -> ARGenerator:
    return _scrambled(ARGenerator(ARGenerator.Params(**SMALL), layout), seed)


def _masked(layout: TokenLayout, seed: int = 0) -> MaskedGenerator:
    return _scrambled(MaskedGenerator(MaskedGenerator.Params(**SMALL), layout), seed)


LAYOUT = TokenLayout.grid_of("codes", (2, 3, 3), 16, num_classes=4)


def _draw(model: torch.nn.Module, labels: list[int], seed: int = 0, **settings: object) -> torch.Tensor:
    return model.sample(torch.tensor(labels), generator=torch.Generator().manual_seed(seed), **settings)


@pytest.mark.parametrize("settings", [{}, {"cfg_scale": 3.0, "top_k": 5}, {"cfg_scale": 2.0, "cfg_schedule": "linear", "top_p": 0.8}])
def test_kv_cache_sampling_equals_full_recomputation(settings: dict) -> None:
    model = _ar(LAYOUT)
    prefix = torch.randint(0, 16, (3, 9), generator=torch.Generator().manual_seed(1))
    for given in (None, prefix):
        cached = model.sample(torch.tensor([0, 3, -1]), prefix=given, generator=torch.Generator().manual_seed(5), **settings)
        full = model.sample(torch.tensor([0, 3, -1]), prefix=given, generator=torch.Generator().manual_seed(5),
                            kv_cache=False, **settings)  # fmt: skip
        assert torch.equal(cached, full)


def test_causal_logits_never_see_later_tokens() -> None:
    model = _ar(LAYOUT)
    tokens = torch.randint(0, 16, (2, LAYOUT.length), generator=torch.Generator().manual_seed(0))
    classes = torch.tensor([1, 4])
    before = model.logits(tokens, classes)
    for position in (3, 10, LAYOUT.length - 1):
        changed = tokens.clone()
        changed[:, position] = (changed[:, position] + 7) % 16
        after = model.logits(changed, classes)
        assert torch.equal(after[:, : position + 1], before[:, : position + 1])  # row i predicts token i from < i
        assert position == LAYOUT.length - 1 or not torch.allclose(after[:, position + 1 :], before[:, position + 1 :])


def test_ar_likelihood_is_a_distribution_over_all_sequences() -> None:
    """Σ over all V^L sequences of exp(−Σ token NLL) = 1: the factorisation is causal and normalised."""
    layout = TokenLayout.grid_of("codes", (1, 1, 3), 3, num_classes=2)
    model = _ar(layout).double().requires_grad_(False)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)))
    for label in (0, 1, -1):
        nll = model.token_nll(TokenBatch(every, torch.full((27,), label)))
        assert math.isclose(float(torch.exp(-nll.sum(1)).sum()), 1.0, rel_tol=1e-9)
    assert math.isclose(float(model.token_nll(TokenBatch(every, torch.zeros(27, dtype=torch.long))).mean()),
                        float(model.eval().losses(TokenBatch(every, torch.zeros(27, dtype=torch.long)))["ce"]), rel_tol=1e-9)  # fmt: skip


@pytest.mark.parametrize("build", [_ar, _masked])
def test_cfg_scale_one_and_zero_are_the_conditional_and_unconditional_models(build) -> None:  # noqa: ANN001
    model = build(LAYOUT)
    labels = [0, 1, 2, 3]
    conditional = _draw(model, labels)
    assert torch.equal(_draw(model, labels, cfg_scale=1.0, cfg_schedule="linear"), conditional)
    unconditional = _draw(model, [LAYOUT.null_class] * 4)
    assert torch.equal(_draw(model, labels, cfg_scale=0.0), unconditional)
    assert torch.equal(_draw(model, [-1] * 4), unconditional)
    assert not torch.equal(conditional, unconditional)
    assert not torch.equal(_draw(model, labels, cfg_scale=4.0), conditional)


@pytest.mark.parametrize("build", [_ar, _masked])
def test_guidance_on_an_unconditional_model_is_refused(build) -> None:  # noqa: ANN001
    model = build(TokenLayout.grid_of("codes", (1, 2, 2), 8))
    with pytest.raises(GenerationError, match="class-conditional"):
        _draw(model, [0], cfg_scale=2.0)


def test_masked_schedule_counts() -> None:
    assert masked_counts(64, 8) == [math.floor(64 * math.cos(math.pi / 2 * (s + 1) / 8)) for s in range(7)] + [0]
    assert masked_counts(64, 8) == [62, 59, 53, 45, 35, 24, 12, 0]
    assert masked_counts(4, 8) == [3, 2, 1, 0, 0, 0, 0, 0]  # at least one token per step, never below zero


def test_masked_sampling_follows_the_schedule_and_keeps_the_prefix() -> None:
    model = _masked(LAYOUT)
    seen: list[int] = []
    forward = model.logits

    def counting(inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        seen.append(int((inputs[0] == model.mask_token).sum()))
        return forward(inputs, classes)

    model.logits = counting
    prefix = torch.randint(0, 16, (2, 9), generator=torch.Generator().manual_seed(3))
    out = model.sample(torch.tensor([1, 2]), prefix=prefix, generator=torch.Generator().manual_seed(0), steps=4)
    assert seen == [9, *masked_counts(9, 4)[:-1]] and torch.equal(out[:, :9], prefix)
    assert int((out == model.mask_token).sum()) == 0


@pytest.mark.parametrize("cls", [ARGenerator, MaskedGenerator])
def test_a_tiny_model_overfits_a_fixed_sequence(cls) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    layout = TokenLayout.grid_of("codes", (1, 4, 4), 12, num_classes=2)
    model = cls(cls.Params(**SMALL, class_dropout=0.0), layout)
    target = torch.randint(0, 12, (1, 16), generator=torch.Generator().manual_seed(9))
    batch = TokenBatch(target.repeat(8, 1), torch.ones(8, dtype=torch.long))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        optimizer.zero_grad()
        loss = model.losses(batch)["ce"]
        loss.backward()
        optimizer.step()
    model.eval()
    assert float(model.losses(batch)["ce"]) < 0.05
    assert torch.equal(_draw(model, [1, 1], temperature=0.5), target.repeat(2, 1))


def test_samples_stay_in_each_segments_vocabulary() -> None:
    layout = TokenLayout("codes", (Segment("key", (1, 2, 2), vocab_size=5), Segment("residual", (3, 1, 1), vocab_size=3, time_offset=1)), 2)
    for model in (_ar(layout), _masked(layout)):
        out = _draw(model, [0, 1, -1] * 4, cfg_scale=2.0)
        layout.check(out)  # codes within each segment's own range
        assert int(out[:, 4:].max()) <= 2 and int(out[:, :4].max()) >= 3  # residual codes from their own table


def test_filters_keep_what_brute_force_keeps() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [[False, False, True, True, True]]
    probs = logits.softmax(-1)[0].tolist()  # 0.575, 0.212, 0.128, 0.078, 0.029
    for top_p in (0.5, 0.6, 0.8, 0.95, 1.0):
        kept = next(n for n in range(1, 6) if sum(probs[:n]) >= top_p - 1e-12)
        assert (~torch.isinf(filter_logits(logits, 0, top_p))).sum().item() == kept


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    model = _masked(LAYOUT)
    assert torch.equal(_draw(model, [0, 1], seed=4), _draw(model, [0, 1], seed=4))
    assert not torch.equal(_draw(model, [0, 1], seed=4), _draw(model, [0, 1], seed=5))


def test_params_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        TransformerParams(widht=3)
