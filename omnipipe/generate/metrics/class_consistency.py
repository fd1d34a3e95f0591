"""``class_consistency``: how often a classifier trained on the real train split names a sample's own label.

The classifier is scikit-learn's multinomial logistic regression on small grey thumbnails (each
frame area-averaged to ``feature_side``², the mean of the channels; with ``centre``, of the box around
the frame's bright pixels, so a digit reads the same wherever it moves); a clip's class is the one with
the highest mean log-probability over its frames. Its accuracy on the real val clips is reported
too (``"real"``): the ceiling a perfect generator would reach.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.generate.metrics.base import GenerationMetric
from omnipipe.nn.frames import fold_frames


def bright_box(frame: torch.Tensor) -> torch.Tensor:
    """The part of a grey frame (1, H, W) inside the bounding box of its pixels brighter than mid-grey
    (the whole frame when none is)."""
    rows, cols = (frame[0] > 0).any(1).nonzero(), (frame[0] > 0).any(0).nonzero()
    if len(rows) == 0:
        return frame
    return frame[:, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]


def thumbnails(pixels: torch.Tensor, side: int, centre: bool = False) -> np.ndarray:
    """Features (B·T, side²) of ``(B, C, T, H, W)`` pixels: grey, area-averaged to side × side; with
    ``centre`` each frame is first cut to the box around its bright pixels (position-independent)."""
    frames = fold_frames(pixels.float().clamp(-1, 1)).mean(1, keepdim=True)  # (B·T, 1, H, W)
    if centre:
        boxes = [F.interpolate(bright_box(frame)[None], size=(side, side), mode="area") for frame in frames]
        return torch.cat(boxes).flatten(1).cpu().numpy().astype(np.float64)
    return F.adaptive_avg_pool2d(frames, side).flatten(1).cpu().numpy().astype(np.float64)


class ClassConsistency(GenerationMetric):
    """Share of samples that a classifier trained on real train clips assigns to their own label (higher is better)."""

    needs_train = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        feature_side: int = Field(default=8, gt=0, description="frames are averaged down to side × side grey pixels")
        inverse_regularization: float = Field(default=1.0, gt=0, description="logistic regression's C")
        max_iter: int = Field(default=2000, gt=0)
        centre: bool = Field(
            default=False, description="cut each frame to the box around its bright pixels first (objects that move)"
        )

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.train: list[tuple[np.ndarray, np.ndarray]] = []
        self.sets: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = defaultdict(list)

    def _add(self, store: list, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        keep = labels >= 0
        if bool(keep.any()):
            features = thumbnails(pixels[keep], self.params.feature_side, self.params.centre)
            store.append((features, labels[keep].cpu().numpy(), pixels.shape[2]))

    def update_train(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        frames = pixels.shape[2]
        keep = labels >= 0
        if bool(keep.any()):
            features = thumbnails(pixels[keep], self.params.feature_side, self.params.centre)
            self.train.append((features, labels[keep].cpu().numpy().repeat(frames)))

    def update_real(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        self._add(self.sets["real"], pixels, labels)

    def update_generated(self, version: str, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        self._add(self.sets[version], pixels, labels)

    def compute(self) -> dict[str, dict[str, float]]:
        from sklearn.linear_model import LogisticRegression

        if not self.train:
            return {}
        features = np.concatenate([f for f, _ in self.train])
        targets = np.concatenate([t for _, t in self.train])
        classifier = LogisticRegression(C=self.params.inverse_regularization, max_iter=self.params.max_iter)
        classifier.fit(features, targets)
        results = {}
        for version, parts in self.sets.items():
            correct = total = 0
            for features_, labels, frames in parts:
                log_probs = classifier.predict_log_proba(features_).reshape(len(labels), frames, -1).mean(1)
                predicted = classifier.classes_[log_probs.argmax(1)]
                correct += int((predicted == labels).sum())
                total += len(labels)
            results[version] = {"class_consistency": correct / total if total else float("nan")}
        return results
