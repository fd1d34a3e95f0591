"""Registry rules: what a component class must declare, and how lookups fail."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from omnipipe.errors import RegistryError
from omnipipe.nn.quantizer_output import QuantizerOutput
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import load_registry
from omnipipe.registry import Registry
from omnipipe.spec.model import ModelSpec


class Good:
    """A well-formed component."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        depth: int = 2

    def __init__(self, params: Params, dim: int = 0) -> None:
        self.params, self.dim = params, dim


def _registry() -> Registry:
    registry = Registry()
    with registry.providing("tests"):
        registry.add("metric", "good", Good)
    return registry


def test_build_passes_validated_params_and_context() -> None:
    built = _registry().build("metric", {"type": "good", "depth": 5}, dim=7)
    assert isinstance(built, Good) and built.params.depth == 5 and built.dim == 7


def test_unknown_name_lists_registered_and_closest() -> None:
    with pytest.raises(RegistryError, match=r"^unknown metric 'goob' — did you mean good\? \(registered: good\)$"):
        _registry().get("metric", "goob")


def test_unknown_kind_suggests_a_kind() -> None:
    with pytest.raises(RegistryError, match=r"unknown kind 'quantiser' — did you mean quantizer\?"):
        _registry().add("quantiser", "x", Good)


def test_entry_without_type() -> None:
    with pytest.raises(RegistryError, match=r"a metric entry needs a 'type' key \(registered: good\)"):
        _registry().build("metric", {"depth": 1})


class NoParams:
    pass


class LooseParams:
    class Params(BaseModel):
        depth: int = 1


class SizeParams:
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int = 1


@pytest.mark.parametrize(
    "cls,message",
    [
        (NoParams, r"quantizer 'x' from tests: NoParams needs a pydantic model `Params`"),
        (LooseParams, r"LooseParams.Params must set model_config = ConfigDict\(extra='forbid'\)"),
        (SizeParams, r"parameter name 'size' is reserved"),
    ],
)
def test_component_class_rules(cls: type, message: str) -> None:
    registry = Registry()
    with registry.providing("tests"), pytest.raises(RegistryError, match=message):
        registry.add("quantizer", "x", cls)


def test_bad_name_and_duplicate() -> None:
    registry = _registry()
    with pytest.raises(RegistryError, match=r"a name must match"):
        registry.add("loss", "Bad Name", Good)
    with registry.providing("other"), pytest.raises(
        RegistryError, match=r"^metric 'good' is registered twice: by tests and by other$"
    ):
        registry.add("metric", "good", Good)


def test_builtins_register_through_the_entry_point() -> None:
    from omnipipe.plugins import load_registry

    entry = load_registry().get("loss", "l1")
    assert entry.provider.startswith("builtins (omnipipe ")


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_plugin_example() -> dict[str, object]:
    """Run the README's "Writing a plugin" code block as written; its globals."""
    text = README.read_text(encoding="utf-8")
    section = text.index("## Writing a plugin")
    block = re.compile(r"```python\n(.*?)```", re.S).search(text, section)
    assert block is not None, "the README's plugin section has no python block"
    namespace: dict[str, object] = {"__name__": "readme_plugin"}
    exec(compile("\n" * text.count("\n", 0, block.start(1)) + block.group(1), str(README), "exec"), namespace)  # noqa: S102
    return namespace


def test_the_readme_plugin_example_builds_tokenizes_and_decodes() -> None:
    example = readme_plugin_example()
    registry = load_registry()
    with registry.providing("readme"):
        example["omnipipe_register"](registry)  # type: ignore[operator]
    torch.manual_seed(0)
    quantizer = registry.build("quantizer", {"type": "sign", "bits": 6}, dim=32)  # passes the build checks
    assert quantizer.codebook_size == 64
    z = torch.randn(2, 2, 3, 4, 32)  # (B, T', H', W', D)
    out = quantizer(z)
    assert out.codes.shape == (2, 2, 3, 4) and 0 <= int(out.codes.min()) and int(out.codes.max()) < 64
    signs = quantizer.proj_in(z) > 0  # reference: the code is the sign bits read as a binary number
    assert torch.equal(out.codes, (signs.long() * 2 ** torch.arange(6)).sum(-1))
    assert torch.allclose(quantizer.decode_codes(out.codes), out.z_q, atol=1e-6)
    spec = ModelSpec.model_validate({
        "patchifier": {"type": "omni", "patch_size": 4, "temporal_patch_size": 4},
        "encoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
        "quantizer": {"type": "sign", "bits": 6},
        "decoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
    })  # fmt: skip
    tokenizer = Tokenizer.from_spec(spec, registry).eval()
    clip = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        codes = tokenizer.tokenize(clip)
        assert codes.shape == (1, 2, 4, 4)
        assert torch.allclose(tokenizer.detokenize(codes), tokenizer(clip).reconstruction.clamp(-1, 1), atol=1e-5)


class TrapQuantizer(torch.nn.Module):
    """The README's former example: 2**dim codes and a decode_codes that returns None."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        codebook_size: int | None = None
        decoded_shape: tuple[int, ...] | None = None
        code_offset: int = 0

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params, self.codebook_size = params, (2**dim if params.codebook_size is None else params.codebook_size)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        return QuantizerOutput(z, torch.zeros(z.shape[:-1], dtype=torch.long) + self.params.code_offset)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor | None:
        shape = self.params.decoded_shape
        return None if shape is None else torch.zeros(shape)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, r"codebook_size 18446744073709551616 must be an int from 2 to 2\*\*31 \(codes are stored as int32\), "
             r"or None for a continuous bottleneck"),
        ({"codebook_size": 0}, r"codebook_size 0 must be an int from 2 to 2\*\*31 .*"),
        ({"codebook_size": 16}, r"decode_codes must return a tensor of shape \(1, 1, 2, 2, 64\) "
                                r"\(B, T', H', W', D\), got NoneType"),
        ({"codebook_size": 16, "decoded_shape": [1, 2, 2, 64]}, r"decode_codes must return a tensor of shape "
                                                                r"\(1, 1, 2, 2, 64\) \(B, T', H', W', D\), got \(1, 2, 2, 64\)"),
        ({"codebook_size": 16, "decoded_shape": [1, 1, 2, 2, 64], "code_offset": 16},
         r"forward\(z\) returned codes outside \[0, codebook_size = 16\): 16..16"),
    ],
)  # fmt: skip
def test_a_quantizer_that_breaks_the_contract_is_stopped_at_build_with_one_line(params: dict, problem: str) -> None:
    registry = Registry()
    with registry.providing("trap-plugin (trap 1.0)"):
        registry.add("quantizer", "trap", TrapQuantizer)
    with pytest.raises(RegistryError, match=rf"^quantizer 'trap' from trap-plugin \(trap 1.0\): {problem}$"):
        registry.build("quantizer", {"type": "trap", **params}, dim=64)


def test_a_sound_trap_variant_passes_and_other_kinds_take_checks() -> None:
    registry = Registry()
    registry.add("quantizer", "trap", TrapQuantizer)
    registry.build("quantizer", {"type": "trap", "codebook_size": 16, "decoded_shape": [1, 1, 2, 2, 64]}, dim=64)
    registry.add("metric", "good", Good)
    registry.add_check("metric", lambda component, context: f"depth {component.params.depth} is odd"
                       if component.params.depth % 2 else None)  # fmt: skip
    registry.build("metric", {"type": "good", "depth": 2})
    with pytest.raises(RegistryError, match=r"^metric 'good' from <direct call>: depth 3 is odd$"):
        registry.build("metric", {"type": "good", "depth": 3})
