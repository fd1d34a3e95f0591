"""Token datasets on disk: the tokens of prepared clips, per split, in chunks read memory-mapped.

```
<outputs>/<name>/tokens/<dataset>/
  index.json                      layout (kind, segments, classes), class names, tokenizer, chunks per split
  chunks/train-00000.json         one per finished chunk, written last (what a re-run trusts)
  train/00000-tokens.npy          int32 codes (N, L) or float32 latents (N, L, C), sequences in layout order
  train/00000-labels.npy          int64 (N,) class index, -1 = unlabelled
  train/00000-clips.npy           int64 (N,) the clip's index in the prepared pool (split, kind, resolution)
  train/00000-flipped.npy         bool (N,) a left-right flipped copy (flip augmentation, train only)
  val/...
```
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnipipe.data.errors import DataError
from omnipipe.data.split import Split
from omnipipe.generate.contract import TokenBatch, TokenLayout

FORMAT = 1
INDEX_FILE = "index.json"
CHUNKS_DIR = "chunks"
ARRAYS = ("tokens", "labels", "clips", "flipped")


def chunk_path(split: Split, number: int, array: str) -> str:
    """The path of one array of a chunk, relative to the dataset folder."""
    return f"{split}/{number:05d}-{array}.npy"


def manifest_path(split: Split, number: int) -> str:
    return f"{CHUNKS_DIR}/{split}-{number:05d}.json"


@dataclass
class TokenSplit:
    """The rows of one split: tokens memory-mapped per chunk, labels/clips/flipped in memory."""

    root: Path
    chunks: list[dict[str, Any]]
    labels: np.ndarray  # (N,) int64
    clips: np.ndarray  # (N,) int64
    flipped: np.ndarray  # (N,) bool
    _maps: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._starts = np.concatenate([[0], np.cumsum([c["count"] for c in self.chunks])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}

    def _chunk(self, number: int) -> np.ndarray:
        if number not in self._maps:
            self._maps[number] = np.load(self.root / self.chunks[number]["tokens"], mmap_mode="r")
        return self._maps[number]

    def tokens(self, indices: np.ndarray) -> torch.Tensor:
        """Sequences at ``indices``: int64 codes (n, L) or float32 latents (n, L, C)."""
        chunk = np.searchsorted(self._starts, indices, side="right") - 1
        rows = np.stack([self._chunk(c)[i - self._starts[c]] for c, i in zip(chunk, indices)])
        return torch.from_numpy(rows.astype(np.int64 if rows.dtype.kind in "iu" else np.float32))

    def batch(self, indices: np.ndarray) -> TokenBatch:
        return TokenBatch(self.tokens(indices), torch.from_numpy(self.labels[indices]))

    def originals(self) -> np.ndarray:
        """Row indices of the clips as they are (not flipped copies), in clip order."""
        return np.nonzero(~self.flipped)[0]


@dataclass
class TokenDataset:
    """What ``omnipipe encode-tokens`` wrote."""

    root: Path
    layout: TokenLayout
    classes: list[str]
    info: dict[str, Any]
    splits: dict[str, TokenSplit]

    @classmethod
    def load(cls, root: str | Path) -> TokenDataset:
        root = Path(root)
        where = root / INDEX_FILE
        try:
            index = json.loads(where.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{where}: no token dataset; run `omnipipe encode-tokens --spec SPEC --dataset NAME` first") from None
        except ValueError as error:
            raise DataError(f"{where}: unreadable ({error})") from None
        if index.get("format") != FORMAT:
            raise DataError(f"{where}: format {index.get('format')} is not {FORMAT}; encode again")
        splits = {}
        for split, chunks in index["splits"].items():
            arrays = {name: [np.load(root / chunk[name]) for chunk in chunks] for name in ARRAYS if name != "tokens"}
            joined = {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in arrays.items()}
            splits[split] = TokenSplit(root, chunks, joined["labels"].astype(np.int64), joined["clips"].astype(np.int64),
                                       joined["flipped"].astype(bool))  # fmt: skip
        return cls(root, TokenLayout.from_json(index["layout"]), index["classes"], index, splits)

    def split(self, name: Split) -> TokenSplit:
        found = self.splits.get(name)
        if found is None or len(found) == 0:
            raise DataError(f"{self.root / INDEX_FILE}: no {name} sequences")
        return found
