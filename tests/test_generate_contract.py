"""The generator contract: token layouts, guidance, and what the registry demands of a generator class."""
from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from omnipipe.errors import RegistryError
from omnipipe.generate.contract import Segment, TokenLayout, TokenLayoutError, class_ids
from omnipipe.generate.guidance import GuidanceSettings, guidance_scale, guide
from omnipipe.registry import Registry


def _vtok_like() -> TokenLayout:
    """A key frame of 2×3 tokens (vocab 16) then one token per later latent frame (vocab 4)."""
    return TokenLayout("codes", (Segment("key", (1, 2, 3), vocab_size=16), Segment("residual", (3, 1, 1), vocab_size=4, time_offset=1)), 5)


def test_positions_are_raster_order_per_segment() -> None:
    layout = TokenLayout.grid_of("codes", (2, 2, 3), 8)
    expected = [(t, h, w) for t in range(2) for h in range(2) for w in range(3)]
    assert layout.positions().tolist() == [list(p) for p in expected]
    assert layout.positions()[layout.prefix_length(1) :, 0].min() == 1 and layout.prefix_length(1) == 6
    assert layout.prefix_length(0) == 0 and layout.prefix_length(2) == 12


def test_multi_segment_layout_offsets_and_prefix() -> None:
    layout = _vtok_like()
    assert layout.length == 9 and layout.vocab_size == 20 and layout.null_class == 5
    assert layout.positions()[6:].tolist() == [[1, 0, 0], [2, 0, 0], [3, 0, 0]]
    assert layout.vocab_offsets().tolist() == [0] * 6 + [16] * 3
    assert layout.vocab_sizes().tolist() == [16] * 6 + [4] * 3
    assert layout.prefix_length(1) == 6 and layout.prefix_length(3) == 8
    assert TokenLayout.from_json(layout.to_json()) == layout
    with pytest.raises(TokenLayoutError, match="no single grid"):
        layout.grid


def test_grid_round_trip_and_checks() -> None:
    layout = TokenLayout.grid_of("codes", (2, 3, 4), 10, num_classes=3)
    codes = torch.randint(0, 10, (5, 2, 3, 4))
    flat = layout.from_grid(codes)
    assert flat.shape == (5, 24) and torch.equal(flat[:, 12:].reshape(5, 3, 4), codes[:, 1])
    assert torch.equal(layout.to_grid(flat), codes)
    layout.check(flat)
    with pytest.raises(TokenLayoutError, match="outside"):
        layout.check(flat + 10)
    with pytest.raises(TokenLayoutError, match=r"expected integer codes \(B, 24\)"):
        layout.check(flat[:, :5])
    latents = TokenLayout.grid_of("latents", (1, 2, 2), 8)
    latents.check(torch.zeros(3, 4, 8))
    with pytest.raises(TokenLayoutError, match="non-finite"):
        latents.check(torch.full((3, 4, 8), float("nan")))
    assert latents.channels == 8


def test_class_ids_map_unlabelled_to_null_class() -> None:
    layout = TokenLayout.grid_of("codes", (1, 1, 1), 2, num_classes=10)
    assert class_ids(torch.tensor([3, -1, 0]), layout).tolist() == [3, 10, 0]


def test_guidance_definition() -> None:
    c, u = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.5])
    assert torch.equal(guide(c, u, 1.0), c) and torch.equal(guide(c, u, 0.0), u)
    assert torch.allclose(guide(c, u, 3.0), torch.tensor([5.0, -4.0]))
    linear = GuidanceSettings(cfg_scale=3.0, cfg_schedule="linear")
    assert [guidance_scale(linear, i, 4) for i in range(4)] == [1.5, 2.0, 2.5, 3.0]
    assert guidance_scale(GuidanceSettings(cfg_scale=3.0), 0, 4) == 3.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _GoodGenerator(torch.nn.Module):
    """A minimal well-formed generator."""

    Params = _Strict
    Sampling = GuidanceSettings

    def __init__(self, params: _Strict, layout: TokenLayout) -> None:
        super().__init__()
        self.layout = layout

    def forward(self, batch):  # noqa: ANN001, ANN201 - shape of the contract only
        return self.losses(batch)

    def losses(self, batch):  # noqa: ANN001, ANN201
        return {}

    def sample(self, labels, prefix=None, generator=None, **settings):  # noqa: ANN001, ANN201
        return torch.zeros(len(labels), self.layout.length, dtype=torch.long)


def test_registry_accepts_a_contract_generator_and_builds_it_with_the_layout() -> None:
    registry = Registry()
    registry.add("generator", "good", _GoodGenerator)
    layout = TokenLayout.grid_of("codes", (1, 2, 2), 4)
    built = registry.build("generator", {"type": "good"}, layout=layout)
    assert built.layout is layout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Sampling": None}, "needs a pydantic model `Sampling`"),
        ({"Sampling": type("Loose", (BaseModel,), {})}, "Sampling must set model_config"),
        ({"Sampling": type("Sized", (_Strict,), {"__annotations__": {"size": int}, "size": 1})}, "'size' is reserved"),
        ({"losses": None}, "needs a method `losses`"),
        ({"forward": torch.nn.Module.forward}, r"needs `forward\(batch\)` returning `losses\(batch\)`"),
        ({"sample": lambda self, labels: None}, r"sample needs the parameter\(s\) prefix, generator"),
    ],
)
def test_registry_rejects_generators_that_break_the_contract(change: dict, message: str) -> None:
    broken = type("Broken", (_GoodGenerator,), change)
    with pytest.raises(RegistryError, match=f"generator 'broken' from <direct call>: .*{message}"):
        Registry().add("generator", "broken", broken)


def test_registry_rejects_a_generator_that_is_not_a_module() -> None:
    plain = type("Plain", (), {"Params": _Strict, "Sampling": GuidanceSettings, "losses": _GoodGenerator.losses,
                               "sample": _GoodGenerator.sample})  # fmt: skip
    with pytest.raises(RegistryError, match="must be a torch.nn.Module"):
        Registry().add("generator", "plain", plain)
