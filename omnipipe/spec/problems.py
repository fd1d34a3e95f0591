"""Turn pydantic validation errors into located, one-line problems with suggestions."""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from omnipipe.suggest import did_you_mean

Loc = tuple[Union[str, int], ...]


class SpecValueError(ValueError):
    """Raised by a spec model's validator to point at a key below the model (``loc``, relative)."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True)
class Problem:
    """One thing wrong at one place of a spec."""

    loc: Loc
    message: str

    @property
    def path(self) -> str:
        return dotted(self.loc)


def dotted(loc: Loc) -> str:
    """``("model", "encoder", "spatial", 0)`` → ``model.encoder.spatial[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``X | None`` or ``list[X]``, if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the value found at ``loc`` (list indices and dict keys skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            current = _model_in(field.annotation)
        # else: a list index or a dict key, which stays on the same (element) model
    return current


def _describe(error: ErrorDetails, model: type[BaseModel], also_allowed: tuple[str, ...]) -> str:
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        holder = model_at(model, loc[:-1])
        keys = list(holder.model_fields) if holder is not None else []
        if len(loc) == 1:
            keys = [*also_allowed, *keys]
        hint = did_you_mean(str(loc[-1]), keys)
        listed = f" (allowed: {', '.join(keys)})" if keys and not hint else ""
        return f"extra field not permitted{hint}{listed}"
    if kind == "missing":
        return "required but missing"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    message = error["msg"].removeprefix("Value error, ")
    if kind not in {"model_type", "dict_type"} and "input" in error:
        shown = repr(error["input"])
        message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return message


def problems_from(error: ValidationError, model: type[BaseModel], also_allowed: tuple[str, ...] = ()) -> list[Problem]:
    """One Problem per pydantic error of validating ``model``; ``also_allowed`` are more valid top-level keys."""
    found = []
    for detail in error.errors(include_url=False):
        loc = tuple(part for part in detail["loc"] if not _is_union_tag(part))
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, SpecValueError):
            loc += cause.loc
        found.append(Problem(loc, _describe({**detail, "loc": loc}, model, also_allowed)))
    return found


def _is_union_tag(part: Any) -> bool:
    """pydantic inserts the member type's name into locs of union errors (e.g. ``'function-after[...]'``)."""
    return isinstance(part, str) and ("[" in part or part in {"int", "float", "str", "bool", "none"})
