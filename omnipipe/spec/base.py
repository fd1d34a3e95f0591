"""Base class of every spec section: unknown keys are errors, never silently ignored."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
Resolution = tuple[PositiveInt, PositiveInt]  # (height, width) in pixels


class StrictModel(BaseModel):
    """A spec section: extra keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
