"""The prepared-data layout: uint8 shards per split, kind and resolution, listed by ``index.json``.

```
<prepared_dir>/
  index.json                                  classes, clip settings, every pool and its shards
  prepare_report.json                         counts per source and split, skipped files, bytes, seconds
  units/s00-u00000.json                       one per finished unit of work (what makes re-runs resume)
  <split>/<kind>-<H>x<W>/s00-u00000.npy       uint8 (N, T, H', W', 3); T = 1 for images
```
``H' × W'`` is the resolution enlarged by ``crop_margin`` so the loader can crop at random.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnipipe.data.decode import HW
from omnipipe.data.errors import DataError
from omnipipe.data.media import MediaKind
from omnipipe.data.split import Split

FORMAT = 1
INDEX_FILE = "index.json"
REPORT_FILE = "prepare_report.json"
UNITS_DIR = "units"


def resolution_name(resolution: HW) -> str:
    return f"{resolution[0]}x{resolution[1]}"


def stored_resolution(resolution: HW, crop_margin: float) -> HW:
    """The stored size of ``resolution``: larger by ``crop_margin`` on each side, for random crops."""
    return math.ceil(resolution[0] * (1 + crop_margin)), math.ceil(resolution[1] * (1 + crop_margin))


def shard_path(split: Split, kind: MediaKind, resolution: HW, unit: str) -> str:
    """The path of one unit's shard, relative to the prepared folder."""
    return f"{split}/{kind}-{resolution_name(resolution)}/{unit}.npy"


@dataclass
class Pool:
    """All clips of one split, kind and resolution: shards read lazily (memory-mapped) by global index."""

    root: Path
    stored: HW
    paths: list[str]
    counts: list[int]
    labels: np.ndarray  # (N,) int64, -1 where unlabelled
    _arrays: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": {}}  # workers open their own memory maps

    def read(self, indices: np.ndarray) -> np.ndarray:
        """uint8 clips (len(indices), T, H', W', 3) at the given global indices."""
        shards = np.searchsorted(self._starts, indices, side="right") - 1
        return np.stack([self._shard(s)[i - self._starts[s]] for s, i in zip(shards, indices)])

    def _shard(self, number: int) -> np.ndarray:
        if number not in self._arrays:
            self._arrays[number] = np.load(self.root / self.paths[number], mmap_mode="r")
        return self._arrays[number]


@dataclass
class PreparedIndex:
    """What ``omnipipe prepare`` wrote: class names, clip settings and the pools of clips."""

    root: Path
    classes: list[str]
    clip_frames: int
    fps: float
    pools: dict[tuple[Split, MediaKind, HW], Pool]

    @classmethod
    def load(cls, root: str | Path) -> PreparedIndex:
        root = Path(root)
        try:
            index = json.loads((root / INDEX_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{root / INDEX_FILE}: no prepared data; run `omnipipe prepare --spec SPEC` first") from None
        except (OSError, ValueError, RecursionError) as error:
            raise DataError(f"{root / INDEX_FILE}: unreadable ({type(error).__name__}); prepare again") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            found = index.get("format") if isinstance(index, dict) else type(index).__name__
            raise DataError(f"{root / INDEX_FILE}: format {found} is not {FORMAT}; prepare again")
        pools = {}
        for entry in index["pools"]:
            shards = entry["shards"]
            pools[(entry["split"], entry["kind"], tuple(entry["resolution"]))] = Pool(
                root,
                tuple(entry["stored"]),
                [shard["path"] for shard in shards],
                [shard["count"] for shard in shards],
                np.array([label for shard in shards for label in shard["labels"]], dtype=np.int64),
            )
        return cls(root, index["classes"], index["clip_frames"], index["fps"], pools)

    def pool(self, split: Split, kind: MediaKind, resolution: HW) -> Pool:
        """The pool of ``split``/``kind`` at ``resolution``; DataError listing what exists otherwise."""
        found = self.pools.get((split, kind, tuple(resolution)))
        if found is None or len(found) == 0:
            have = sorted(f"{s}/{k}-{resolution_name(r)}" for s, k, r in self.pools)
            raise DataError(
                f"{self.root}: no {kind} clips in the {split} split at {resolution_name(resolution)} "
                f"(prepared: {', '.join(have) or 'nothing'})"
            )
        return found
