"""Registry rules: what a component class must declare, and how lookups fail."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from omnipipe.errors import RegistryError
from omnipipe.registry import Registry


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
        registry.add("quantizer", "good", Good)
    return registry


def test_build_passes_validated_params_and_context() -> None:
    built = _registry().build("quantizer", {"type": "good", "depth": 5}, dim=7)
    assert isinstance(built, Good) and built.params.depth == 5 and built.dim == 7


def test_unknown_name_lists_registered_and_closest() -> None:
    with pytest.raises(RegistryError, match=r"^unknown quantizer 'goob' — did you mean good\? \(registered: good\)$"):
        _registry().get("quantizer", "goob")


def test_unknown_kind_suggests_a_kind() -> None:
    with pytest.raises(RegistryError, match=r"unknown kind 'quantiser' — did you mean quantizer\?"):
        _registry().add("quantiser", "x", Good)


def test_entry_without_type() -> None:
    with pytest.raises(RegistryError, match=r"a quantizer entry needs a 'type' key \(registered: good\)"):
        _registry().build("quantizer", {"depth": 1})


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
        RegistryError, match=r"^quantizer 'good' is registered twice: by tests and by other$"
    ):
        registry.add("quantizer", "good", Good)


def test_builtins_register_through_the_entry_point() -> None:
    from omnipipe.plugins import load_registry

    entry = load_registry().get("loss", "l1")
    assert entry.provider.startswith("builtins (omnipipe ")
