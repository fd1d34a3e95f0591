"""The builtin ``dataset`` components."""
from __future__ import annotations

from omnipipe.data.digits import DigitImages, MovingDigits
from omnipipe.data.embedded import EmbeddedMedia
from omnipipe.data.folders import ImageFolder, VideoFolder
from omnipipe.data.manifest import Manifest
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    registry.add("dataset", "image_folder", ImageFolder)
    registry.add("dataset", "video_folder", VideoFolder)
    registry.add("dataset", "manifest", Manifest)
    registry.add("dataset", "embedded_media", EmbeddedMedia)
    registry.add("dataset", "digits", DigitImages)
    registry.add("dataset", "moving_digits", MovingDigits)
