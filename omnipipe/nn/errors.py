"""Errors raised by the network modules for inputs that break a shape rule."""
from __future__ import annotations

from omnipipe.errors import OmnipipeError


class InputShapeError(OmnipipeError, ValueError):
    """A tensor whose shape the tokenizer cannot take; the one-line message names the shape and the rule."""

