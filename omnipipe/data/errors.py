"""Errors of the data layer; each is an OmnipipeError, so the CLI prints it as one line."""
from __future__ import annotations

from omnipipe.errors import OmnipipeError


class DataError(OmnipipeError):
    """Prepared data or a source that cannot be used as configured."""


class MissingSourceError(DataError):
    """A source's folder or file does not exist; ``field`` names its parameter (e.g. ``root``)."""

    def __init__(self, field: str, path: str, what: str = "folder") -> None:
        self.field = field
        self.path = path
        self.what = what
        super().__init__(f"{field}: {what} not found: {path}")

    def at(self, where: str) -> MissingSourceError:
        """The same error located at spec path ``where`` (e.g. ``data.sources[1]``)."""
        return MissingSourceError(f"{where}.{self.field}", self.path, self.what)


class DecodeError(Exception):
    """A media file that cannot be decoded; the message is the reason recorded in the report."""


class PartialDecodeError(DecodeError):
    """A video damaged part-way through: ``clips`` holds the clips decoded before the damage."""

    def __init__(self, message: str, clips: list) -> None:
        super().__init__(message)
        self.clips = clips


class ShortVideoError(DecodeError):
    """A video with fewer frames (at the sampling rate) than one clip needs."""
