"""The component registry: kind → name → (class, provider); each class declares its own ``Params``."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from omnipipe.errors import RegistryError
from omnipipe.suggest import did_you_mean

if TYPE_CHECKING:
    from omnipipe.spec.component import ComponentSpec

KINDS: tuple[str, ...] = (
    "patchifier",
    "attention",
    "quantizer",
    "loss",
    "discriminator",
    "generator",
    "metric",
    "dataset",
)
# DVC leaves params keys named exactly like this out of its run-cache hash (see DESIGN.md §5).
FORBIDDEN_KEYS = frozenset({"size", "nfiles"})
RESERVED_KEYS = frozenset({"type"})
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")

BuildCheck = Callable[[Any, Mapping[str, Any]], "str | None"]
"""``check(component, context) -> problem or None``: run on every component of its kind right after it is built."""


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    cls: type
    provider: str

    @property
    def params_model(self) -> type[BaseModel]:
        return self.cls.Params

    @property
    def doc(self) -> str:
        """First line of the class docstring."""
        lines = (self.cls.__doc__ or "").strip().splitlines()
        return lines[0].strip() if lines else ""


class Registry:
    """Holds every component the loaded plugins registered, by kind and name."""

    def __init__(self) -> None:
        from omnipipe.nn.quantizer_check import check_quantizer

        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._provider = "<direct call>"
        self._checks: dict[str, list[BuildCheck]] = {kind: [] for kind in KINDS}
        self.add_check("quantizer", check_quantizer)

    def add_check(self, kind: str, check: BuildCheck) -> None:
        """Run ``check(component, context)`` on every ``kind`` component ``build`` makes; a returned phrase
        stops the build with one line naming the component and its provider."""
        self._checks[self.get_kind(kind)].append(check)

    @contextmanager
    def providing(self, provider: str) -> Iterator[Registry]:
        """Attribute every ``add`` inside the block to ``provider`` (a plugin's name)."""
        previous, self._provider = self._provider, provider
        try:
            yield self
        finally:
            self._provider = previous

    def add(self, kind: str, name: str, cls: type) -> None:
        """Register ``cls`` as component ``name`` of ``kind``; ``cls.Params`` must forbid extra keys."""
        where = f"{kind} '{name}' from {self._provider}"
        if kind not in self._entries:
            raise RegistryError(f"{where}: {self._unknown_kind(kind)}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(f"{where}: a name must match {_NAME.pattern}")
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistryError(f"{where}: {cls.__qualname__} needs a pydantic model `Params`")
        if params.model_config.get("extra") != "forbid":
            raise RegistryError(
                f"{where}: {cls.__qualname__}.Params must set model_config = ConfigDict(extra='forbid')"
            )
        bad = sorted((FORBIDDEN_KEYS | RESERVED_KEYS) & set(params.model_fields))
        if bad:
            raise RegistryError(f"{where}: parameter name '{bad[0]}' is reserved; choose a more specific name")
        if kind == "generator":
            from omnipipe.generate.contract import generator_class_problem

            problem = generator_class_problem(cls)
            if problem is not None:
                raise RegistryError(f"{where}: {problem}")
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise RegistryError(
                f"{kind} '{name}' is registered twice: by {existing.provider} and by {self._provider}"
            )
        self._entries[kind][name] = Entry(kind, name, cls, self._provider)

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; an unknown name lists what is registered and the closest match."""
        try:
            return self._entries[self.get_kind(kind)][name]
        except KeyError:
            names = self.names(kind)
            listed = ", ".join(names) if names else "none"
            raise RegistryError(
                f"unknown {kind} '{name}'{did_you_mean(str(name), names)} (registered: {listed})"
            ) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str | None = None) -> list[Entry]:
        kinds = KINDS if kind is None else (self.get_kind(kind),)
        return [self._entries[k][n] for k in kinds for n in sorted(self._entries[k])]

    def get_kind(self, kind: str) -> str:
        """``kind`` itself when it is one of KINDS, else a RegistryError with the closest kind."""
        if kind not in self._entries:
            raise RegistryError(self._unknown_kind(kind))
        return kind

    @staticmethod
    def _unknown_kind(kind: str) -> str:
        return f"unknown kind '{kind}'{did_you_mean(kind, KINDS)} (kinds: {', '.join(KINDS)})"

    def build(self, kind: str, spec: ComponentSpec | Mapping[str, Any], **context: Any) -> Any:
        """Instantiate a component from ``{type: name, ...params}`` (or a resolved spec entry).

        ``context`` is what the assembler knows and passes on, e.g. ``dim`` for a quantizer. The kind's
        build checks (``add_check``; quantizers: ``omnipipe.nn.quantizer_check``) run on the result.
        """
        from omnipipe.spec.component import ComponentSpec, resolve_params

        if isinstance(spec, ComponentSpec):
            params = spec.params if spec.is_resolved else resolve_params(self, kind, spec.type, spec.raw_params)
            name = spec.type
        else:
            raw = dict(spec)
            name = raw.pop("type", None)
            if name is None:
                raise RegistryError(f"a {kind} entry needs a 'type' key (registered: {', '.join(self.names(kind))})")
            params = resolve_params(self, kind, name, raw)
        entry = self.get(kind, name)
        component = entry.cls(params, **context)
        for check in self._checks[kind]:
            problem = check(component, context)
            if problem is not None:
                raise RegistryError(f"{kind} '{name}' from {entry.provider}: {problem}")
        return component
