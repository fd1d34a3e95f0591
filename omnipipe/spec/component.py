"""Component entries of a spec: ``{type: <registered name>, ...params}``, one class per kind."""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr, SerializerFunctionWrapHandler, ValidationError, model_serializer

from omnipipe.errors import RegistryError
from omnipipe.registry import Entry, Registry
from omnipipe.spec.base import NonNegativeInt, Weight
from omnipipe.spec.problems import Problem, problems_from


class ParamsError(RegistryError):
    """A component's parameters do not validate against its registered ``Params``."""

    def __init__(self, entry: Entry, problems: list[Problem]) -> None:
        self.entry = entry
        self.problems = problems
        details = "; ".join(f"{p.path}: {p.message}" for p in problems)
        super().__init__(f"{entry.kind} '{entry.name}' (from {entry.provider}): {details}")


def resolve_params(
    registry: Registry, kind: str, name: str, raw: dict[str, Any], entry_keys: tuple[str, ...] = ("type",)
) -> BaseModel:
    """Validate ``raw`` against the ``Params`` of the registered component ``kind``/``name``.

    ``entry_keys`` are the keys the spec entry itself declares (suggested for misspelled keys too).
    """
    entry = registry.get(kind, name)
    try:
        return entry.params_model.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(entry, problems_from(error, entry.params_model, entry_keys)) from None


class ComponentSpec(BaseModel):
    """A ``{type: name, ...}`` entry; keys other than the declared ones are the component's params."""

    kind: ClassVar[str] = ""
    model_config = ConfigDict(extra="allow")

    type: str
    _params: BaseModel | None = PrivateAttr(default=None)

    @property
    def raw_params(self) -> dict[str, Any]:
        """The params as written in the spec (before validation against the component)."""
        return dict(self.model_extra or {})

    @property
    def is_resolved(self) -> bool:
        return self._params is not None

    @property
    def params(self) -> BaseModel:
        """The validated params; available once the spec was loaded against a registry."""
        if self._params is None:
            raise RuntimeError(f"{self.kind} '{self.type}' was not validated against a registry")
        return self._params

    def resolve(self, registry: Registry) -> None:
        """Validate the params against the registered component (raises RegistryError/ParamsError)."""
        self._params = resolve_params(registry, self.kind, self.type, self.raw_params, tuple(type(self).model_fields))

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        extra = self.model_extra or {}
        out = {key: value for key, value in handler(self).items() if key not in extra}
        out.update(self._params.model_dump(mode="json") if self._params is not None else extra)
        return out


class PatchifierSpec(ComponentSpec):
    kind: ClassVar[str] = "patchifier"


class AttentionSpec(ComponentSpec):
    kind: ClassVar[str] = "attention"


class QuantizerSpec(ComponentSpec):
    kind: ClassVar[str] = "quantizer"


class LossSpec(ComponentSpec):
    """A loss term; ``weight`` scales it in the total, ``start_step`` delays it."""

    kind: ClassVar[str] = "loss"
    weight: Weight = 1.0
    start_step: NonNegativeInt = 0


class DiscriminatorSpec(ComponentSpec):
    """A critic of the ``gan`` loss; ``weight`` scales its generator terms and its own loss.

    ``on_clips`` (image critic only): judge clips too, next to the video critic — one random frame per
    clip or every frame (unset: the image critic judges clips only when there is no video critic).
    """

    kind: ClassVar[str] = "discriminator"
    weight: Weight = 1.0
    on_clips: Literal["one_frame", "all_frames"] | None = None


class GeneratorSpec(ComponentSpec):
    kind: ClassVar[str] = "generator"


class MetricSpec(ComponentSpec):
    kind: ClassVar[str] = "metric"


class DatasetSpec(ComponentSpec):
    kind: ClassVar[str] = "dataset"
