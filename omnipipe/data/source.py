"""The base of every ``dataset`` component: list media items, decode one into clips."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from pydantic import BaseModel, ConfigDict

from omnipipe.data.decode import HW, read_image, read_video_clips
from omnipipe.data.media import ClipSampling, MediaItem


class SourceParams(BaseModel):
    """Base of a source's ``Params``: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class MediaSource(ABC):
    """A ``dataset`` component; plugins subclass it with their own ``Params``.

    ``scan`` lists items cheaply (no decoding) in a stable order and raises MissingSourceError for a
    missing folder or file; ``clips`` decodes one item (override it for media that is not a file).
    """

    Params: type[SourceParams] = SourceParams

    def __init__(self, params: SourceParams) -> None:
        self.params = params

    @abstractmethod
    def scan(self) -> list[MediaItem]:
        """The items of this source, in a stable order."""

    def clips(self, item: MediaItem, sampling: ClipSampling, fit: HW) -> list[np.ndarray]:
        """uint8 clips (T, H, W, 3) of ``item``, at least as large as what covers ``fit`` when the media is;
        raises DecodeError (PartialDecodeError, with the clips decoded so far, for a video damaged part-way)."""
        if item.kind == "image":
            return [read_image(item.path, fit)]
        return read_video_clips(item.path, sampling, fit, item.max_clips)
