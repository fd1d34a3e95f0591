"""``omnipipe prepare``: scan sources, decode, cut clips, resize, split, write shards and the report.

Work is done in units (``files_per_shard`` files of one source). A finished unit leaves its shards and
then ``units/<id>.json``; a re-run reuses every unit whose manifest matches its fingerprint, so an
interrupted prepare finishes the job without redoing or losing what was done.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from omnipipe.atomic import TMP_SUFFIX, write_json, write_npy
from omnipipe.data.decode import HW, cover_crop
from omnipipe.data.errors import DataError, DecodeError, MissingSourceError
from omnipipe.data.media import ClipSampling, MediaItem
from omnipipe.data.report import build_index, build_report
from omnipipe.data.shards import FORMAT, INDEX_FILE, REPORT_FILE, UNITS_DIR, shard_path, stored_resolution
from omnipipe.data.source import MediaSource
from omnipipe.data.split import SPLITS, clip_splits
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec


@dataclass(frozen=True)
class Settings:
    """Everything besides its files that decides what a unit writes."""

    sampling: ClipSampling
    resolutions: tuple[HW, ...]
    stored: tuple[HW, ...]
    val_fraction: float
    split_unit: str

    @classmethod
    def of(cls, data: DataSpec) -> Settings:
        resolutions = tuple(tuple(r) for r in data.resolutions)
        return cls(
            ClipSampling(data.fps, data.clip_frames, data.clip_stride),
            resolutions,
            tuple(stored_resolution(r, data.crop_margin) for r in resolutions),
            data.val_fraction,
            data.split_unit,
        )

    @property
    def fit(self) -> HW:
        """A size that covers every stored resolution: decoders never shrink below it."""
        return max(h for h, _ in self.stored), max(w for _, w in self.stored)


@dataclass(frozen=True)
class Unit:
    """A unit of work: up to ``files_per_shard`` consecutive items of one source."""

    id: str
    source: int
    items: tuple[MediaItem, ...]
    fingerprint: str


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def plan_units(data: DataSpec, listed: list[list[MediaItem]], settings: Settings) -> list[Unit]:
    """Cut each source's items into units; a fingerprint covers settings, source params and file states."""
    units = []
    for number, (spec, items) in enumerate(zip(data.sources, listed)):
        for start in range(0, len(items), data.files_per_shard):
            chunk = tuple(items[start : start + data.files_per_shard])
            content = {
                "format": FORMAT,
                "settings": repr(settings),
                "source": spec.model_dump(mode="json"),
                "items": [(i.key, i.kind, i.label, i.max_clips, _file_state(i.path)) for i in chunk],
            }
            digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()
            units.append(Unit(f"s{number:02d}-u{start // data.files_per_shard:05d}", number, chunk, digest))
    return units


def _skip_reason(item: MediaItem) -> str | None:
    """Why ``item`` cannot be used before decoding it, if that is already clear."""
    if item.kind is None:
        return f"unsupported extension '{item.path.suffix or '(none)'}'"
    state = _file_state(item.path)
    if state is None:
        return "file not found"
    return "empty file (0 bytes)" if state[0] == 0 else None


def run_unit(
    source: MediaSource, unit: Unit, settings: Settings, out: Path, on_item: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """Decode a unit's items, write its shards, then its manifest (what a re-run trusts); return the manifest."""
    frames: dict[tuple[str, str, int], list[np.ndarray]] = defaultdict(list)
    labels: dict[tuple[str, str], list[str | None]] = defaultdict(list)
    skipped = []
    for item in unit.items:
        reason = _skip_reason(item)
        clips: list[np.ndarray] = []
        if reason is None:
            try:
                clips = source.clips(item, settings.sampling, settings.fit)
            except DecodeError as error:
                reason = str(error)
            except Exception as error:  # noqa: BLE001 - one odd file must not end a long prepare; it is reported
                reason = f"unexpected {type(error).__name__}: {error}"
        if reason is not None:
            skipped.append({"path": item.key, "reason": reason})
        splits = clip_splits(item.key, len(clips), settings.split_unit, settings.val_fraction, settings.sampling)
        for clip, split in zip(clips, splits):
            if split is None:  # the gap between a video's train and val spans
                continue
            labels[(split, item.kind)].append(item.label)
            for r, stored in enumerate(settings.stored):
                frames[(split, item.kind, r)].append(np.stack([cover_crop(frame, stored) for frame in clip]))
        on_item()
    shards = []
    for (split, kind, r), clips in sorted(frames.items()):
        path = shard_path(split, kind, settings.resolutions[r], unit.id)
        write_npy(out / path, np.stack(clips))
        shards.append({
            "split": split, "kind": kind, "resolution": settings.resolutions[r], "stored": settings.stored[r],
            "path": path, "count": len(clips), "labels": labels[(split, kind)],
            "bytes": (out / path).stat().st_size,
        })  # fmt: skip
    manifest = {"fingerprint": unit.fingerprint, "source": unit.source, "files": len(unit.items),
                "skipped": skipped, "shards": shards}  # fmt: skip
    write_json(out / UNITS_DIR / f"{unit.id}.json", manifest)
    return manifest


def _finished(out: Path, unit: Unit) -> dict[str, Any] | None:
    """The unit's manifest when it was finished with the same fingerprint and its shards are all there."""
    try:
        manifest = json.loads((out / UNITS_DIR / f"{unit.id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("fingerprint") != unit.fingerprint:
        return None
    return manifest if all((out / shard["path"]).is_file() for shard in manifest["shards"]) else None


def _sweep(out: Path, manifests: list[dict[str, Any]], units: list[Unit]) -> None:
    """Remove what no current unit owns (stale shards and manifests, temporary files) from our sub-folders."""
    keep = {out / shard["path"] for manifest in manifests for shard in manifest["shards"]}
    keep |= {out / UNITS_DIR / f"{unit.id}.json" for unit in units}
    for folder in [*(out / split for split in SPLITS), out / UNITS_DIR]:
        for path in sorted(folder.rglob("*"), reverse=True):
            if path.is_file() and path not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for path in out.glob(f"*{TMP_SUFFIX}"):
        path.unlink()


def scan_sources(data: DataSpec, registry: Registry, spec_path: str | None = None) -> list[tuple[MediaSource, list[MediaItem]]]:
    """Build every source and list its items; a missing folder names its spec key (``data.sources[1].root``)."""
    listed = []
    for number, spec in enumerate(data.sources):
        source = registry.build("dataset", spec)
        try:
            listed.append((source, source.scan()))
        except MissingSourceError as error:
            located = error.at(f"data.sources[{number}]")
            raise DataError(f"{spec_path}: {located}" if spec_path else str(located)) from None
    return listed


def prepare(
    data: DataSpec,
    registry: Registry,
    spec_path: str | None = None,
    workers: int = 1,
    progress: bool = True,
    report_path: str | Path | None = None,
) -> dict[str, Any]:
    """Prepare ``data`` under ``data.prepared_dir``; returns the report, also written to ``report_path``
    (default: ``<prepared_dir>/prepare_report.json``)."""
    began = time.perf_counter()
    out = Path(data.prepared_dir)
    settings = Settings.of(data)
    listed = scan_sources(data, registry, spec_path)
    units = plan_units(data, [items for _, items in listed], settings)
    manifests: dict[str, dict[str, Any]] = {}
    for unit in units:
        finished = _finished(out, unit)
        if finished is not None:
            manifests[unit.id] = finished
    resumed = len(manifests)
    pending = [unit for unit in units if unit.id not in manifests]
    with tqdm(total=sum(len(u.items) for u in pending), unit="file", desc="prepare", disable=not progress) as bar:
        if workers > 1 and len(pending) > 1:
            with ProcessPoolExecutor(min(workers, len(pending))) as pool:
                futures = {pool.submit(run_unit, listed[u.source][0], u, settings, out): u for u in pending}
                for future in as_completed(futures):
                    manifests[futures[future].id] = future.result()
                    bar.update(len(futures[future].items))
        else:
            for unit in pending:
                manifests[unit.id] = run_unit(listed[unit.source][0], unit, settings, out, lambda: bar.update(1))
    ordered = [manifests[unit.id] for unit in units]
    _sweep(out, ordered, units)
    index = build_index(ordered, settings.sampling)
    write_json(out / INDEX_FILE, index)
    report = build_report(data, ordered, len(index["classes"]), resumed, time.perf_counter() - began)
    write_json(Path(report_path) if report_path is not None else out / REPORT_FILE, report)
    return report
