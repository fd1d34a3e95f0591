"""``omnipipe prepare``: scan sources, decode, cut clips, resize, split, write shards and the report.

Work is done in units (``files_per_shard`` files of one source). A unit first claims the shards it may
write in ``units/<id>.json``, writes them, then rewrites that manifest with what it wrote; a re-run
reuses every unit whose manifest matches its fingerprint (settings, source, the files' contents), so an
interrupted prepare finishes the job without redoing or losing what was done. What ``prepare`` may
delete is decided in ``omnipipe.data.ownership``; nothing machine-local (mtimes, absolute paths,
timings) enters the folder, so two machines prepare byte-identical data.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from omnipipe.atomic import write_json, write_npy
from omnipipe.data.decode import HW, cover_crop
from omnipipe.data.errors import DataError, DecodeError, MissingSourceError, PartialDecodeError
from omnipipe.data.extent import extent_problem
from omnipipe.data.file_checks import file_digest, unusable_reason
from omnipipe.data.media import ClipSampling, MediaItem
from omnipipe.data.ownership import PreparedFolder
from omnipipe.data.report import build_index, build_report
from omnipipe.data.shards import FORMAT, INDEX_FILE, REPORT_FILE, UNITS_DIR, shard_path, stored_resolution
from omnipipe.data.source import MediaSource
from omnipipe.data.split import SPLITS, clip_splits
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec
from omnipipe.storage import storage_errors


@dataclass(frozen=True)
class Settings:
    """Everything besides its files that decides what a unit writes."""

    sampling: ClipSampling
    resolutions: tuple[HW, ...]
    stored: tuple[HW, ...]
    val_fraction: float
    split_unit: str
    max_upscale: float
    max_aspect_ratio: float

    @classmethod
    def of(cls, data: DataSpec) -> Settings:
        resolutions = tuple(tuple(r) for r in data.resolutions)
        return cls(
            ClipSampling(data.fps, data.clip_frames, data.clip_stride),
            resolutions,
            tuple(stored_resolution(r, data.crop_margin) for r in resolutions),
            data.val_fraction,
            data.split_unit,
            data.max_upscale,
            data.max_aspect_ratio,
        )

    @property
    def fit(self) -> HW:
        """A size that covers every stored resolution: decoders never shrink below it."""
        return max(h for h, _ in self.stored), max(w for _, w in self.stored)


@dataclass(frozen=True)
class Unit:
    """A unit of work: up to ``files_per_shard`` consecutive items of one source.

    ``plan`` fingerprints everything but the files' bytes (settings, source params, item keys, kinds,
    labels); the files' contents are fingerprinted by ``content_digest`` only when a manifest's plan matches.
    """

    id: str
    source: int
    items: tuple[MediaItem, ...]
    plan: str


def plan_units(data: DataSpec, listed: list[list[MediaItem]], settings: Settings) -> list[Unit]:
    """Cut each source's items into units of ``files_per_shard`` items."""
    units = []
    for number, (spec, items) in enumerate(zip(data.sources, listed)):
        for start in range(0, len(items), data.files_per_shard):
            chunk = tuple(items[start : start + data.files_per_shard])
            content = {
                "format": FORMAT,
                "settings": repr(settings),
                "source": spec.model_dump(mode="json"),
                "items": [(i.key, i.kind, i.label, i.max_clips, i.problem) for i in chunk],
            }
            units.append(Unit(f"s{number:02d}-u{start // data.files_per_shard:05d}", number, chunk, _sha256(content)))
    return units


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def content_digest(unit: Unit) -> str:
    """A fingerprint of the bytes of the unit's files (missing or unreadable files count as such); a file
    that several items share (a source of many samples in one file) is hashed once."""
    digests = {path: file_digest(path) for path in {item.path for item in unit.items}}
    return _sha256([(item.key, digests[item.path]) for item in unit.items])


def _skip_reason(item: MediaItem) -> str | None:
    """Why ``item`` cannot be used before decoding it, if that is already clear."""
    if item.problem is not None:
        return item.problem
    if item.kind is None:
        return f"unsupported extension '{item.path.suffix or '(none)'}'"
    return unusable_reason(item.path)


def _decode(source: MediaSource, item: MediaItem, settings: Settings) -> tuple[list[np.ndarray], str | None]:
    """The item's clips and, when some or all of it is unusable, why (in words without machine-local paths)."""
    reason = _skip_reason(item)
    clips: list[np.ndarray] = []
    if reason is None:
        try:
            clips = source.clips(item, settings.sampling, settings.fit)
        except PartialDecodeError as error:
            clips, reason = error.clips, str(error)
        except DecodeError as error:
            reason = str(error)
        except Exception as error:  # noqa: BLE001 - one odd file must not end a long prepare; it is reported
            reason = f"unexpected {type(error).__name__}: {error}"
    if clips:
        height, width = clips[0].shape[1:3]
        problem = extent_problem(height, width, settings.fit, settings.max_upscale, settings.max_aspect_ratio)
        if problem is not None:
            clips, reason = [], problem
    return clips, None if reason is None else reason.replace(str(item.path), item.key)


def claimed_shards(unit: Unit, settings: Settings) -> list[str]:
    """Every shard path the unit may write (listed in its manifest before it writes any)."""
    kinds = sorted({item.kind for item in unit.items if item.kind is not None})
    return [shard_path(s, k, r, unit.id) for s in SPLITS for k in kinds for r in settings.resolutions]


def run_unit(
    source: MediaSource, unit: Unit, settings: Settings, out: Path, on_item: Callable[[], None] = lambda: None
) -> dict[str, Any]:
    """Claim the unit's shards, decode its items, write its shards, then its manifest; return the manifest."""
    manifest_path = out / UNITS_DIR / f"{unit.id}.json"
    write_json(manifest_path, {"plan": unit.plan, "content": None, "shards": [{"path": p} for p in claimed_shards(unit, settings)]})
    content = content_digest(unit)
    frames: dict[tuple[str, str, int], list[np.ndarray]] = defaultdict(list)
    labels: dict[tuple[str, str], list[str | None]] = defaultdict(list)
    skipped = []
    for item in unit.items:
        clips, reason = _decode(source, item, settings)
        if reason is not None:
            skipped.append({"path": item.key, "reason": reason, **({"clips_kept": len(clips)} if clips else {})})
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
    manifest = {"plan": unit.plan, "content": content, "source": unit.source, "files": len(unit.items),
                "skipped": skipped, "shards": shards}  # fmt: skip
    write_json(manifest_path, manifest)
    return manifest


def _finished(out: Path, unit: Unit, manifest: dict[str, Any] | None) -> bool:
    """Whether ``manifest`` records the unit finished with the same plan and file contents, its shards intact."""
    if manifest is None or manifest.get("plan") != unit.plan or manifest.get("content") is None:
        return False
    intact = all(
        (out / shard["path"]).is_file() and (out / shard["path"]).stat().st_size == shard.get("bytes")
        for shard in manifest["shards"]
    )
    return intact and manifest["content"] == content_digest(unit)


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


def _reads_own_output(data: DataSpec, listed: list[tuple[MediaSource, list[MediaItem]]], spec_path: str | None) -> None:
    """Refuse sources that list files inside the prepared folder: prepare would read its own output."""
    out = os.path.abspath(data.prepared_dir) + os.sep
    for number, (_, items) in enumerate(listed):
        inside = next((item for item in items if os.path.abspath(item.path).startswith(out)), None)
        if inside is not None:
            where = f"{spec_path}: " if spec_path else ""
            raise DataError(
                f"{where}data.sources[{number}] lists {inside.key}, inside data.prepared_dir {data.prepared_dir}: "
                "prepare would read its own output; keep the prepared folder outside the sources"
            )


@dataclass(frozen=True)
class PrepareResult:
    """The report (as written) and how this run went: units reused from an earlier run, seconds taken."""

    report: dict[str, Any]
    resumed: int
    seconds: float


def prepare(
    data: DataSpec,
    registry: Registry,
    spec_path: str | None = None,
    workers: int = 1,
    progress: bool = True,
    report_path: str | Path | None = None,
) -> PrepareResult:
    """Prepare ``data`` under ``data.prepared_dir``; the report is also written to ``report_path``
    (default: ``<prepared_dir>/prepare_report.json``)."""
    began = time.perf_counter()
    out = Path(data.prepared_dir)
    settings = Settings.of(data)
    listed = scan_sources(data, registry, spec_path)
    _reads_own_output(data, listed, spec_path)
    folder = PreparedFolder(out)
    folder.claim(f"{spec_path}: data.prepared_dir" if spec_path else "data.prepared_dir")
    units = plan_units(data, [items for _, items in listed], settings)
    found = folder.manifests()
    manifests = {unit.id: found[unit.id] for unit in units if _finished(out, unit, found.get(unit.id))}
    with storage_errors(out):
        for unit_id, manifest in found.items():
            if unit_id not in manifests:
                folder.remove_unit(unit_id, manifest)  # stale, unfinished or no longer planned
        folder.remove_temporaries()
    resumed = len(manifests)
    pending = [unit for unit in units if unit.id not in manifests]
    with tqdm(total=sum(len(u.items) for u in pending), unit="file", desc="prepare", disable=not progress) as bar:
        if workers > 1 and len(pending) > 1:
            with ProcessPoolExecutor(min(workers, len(pending))) as pool:
                futures = {pool.submit(run_unit, listed[u.source][0], u, settings, out): u for u in pending}
                try:
                    for future in as_completed(futures):
                        manifests[futures[future].id] = future.result()
                        bar.update(len(futures[future].items))
                except BaseException:
                    pool.shutdown(cancel_futures=True)  # a full disk fails every unit: stop, keep what finished
                    raise
        else:
            for unit in pending:
                manifests[unit.id] = run_unit(listed[unit.source][0], unit, settings, out, lambda: bar.update(1))
    ordered = [manifests[unit.id] for unit in units]
    with storage_errors(out):
        folder.remove_empty_folders()
    index = build_index(ordered, settings.sampling)
    write_json(out / INDEX_FILE, index)
    ours = {shard["path"] for manifest in ordered for shard in manifest["shards"]}
    ours |= {f"{UNITS_DIR}/{unit.id}.json" for unit in units}
    report = build_report(data, ordered, len(index["classes"]), folder.foreign_files(ours))
    write_json(Path(report_path) if report_path is not None else out / REPORT_FILE, report)
    return PrepareResult(report, resumed, time.perf_counter() - began)
