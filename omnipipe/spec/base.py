"""Base class of every spec section: unknown keys are errors, never silently ignored."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# strict: YAML's ``true``, ``1.5`` or ``"3"`` are not counts, and ``true`` is not a number
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # finite; an int is accepted
Weight = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]  # a loss weight: finite, not negative
Resolution = tuple[PositiveInt, PositiveInt]  # (height, width) in pixels


class StrictModel(BaseModel):
    """A spec section: extra keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
