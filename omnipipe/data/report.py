"""Summaries of finished units: ``index.json`` for the loader, ``prepare_report.json`` for people and DVC."""
from __future__ import annotations

from typing import Any

from omnipipe.data.media import ClipSampling
from omnipipe.data.shards import FORMAT
from omnipipe.data.split import SPLITS
from omnipipe.spec.data import DataSpec

KINDS = ("image", "video")


def build_index(manifests: list[dict[str, Any]], sampling: ClipSampling) -> dict[str, Any]:
    """Pools of clips per split, kind and resolution, shards in unit order; labels as class indices."""
    classes = sorted({label for m in manifests for s in m["shards"] for label in s["labels"] if label is not None})
    class_ids = {name: number for number, name in enumerate(classes)}
    pools: dict[tuple[Any, ...], dict[str, Any]] = {}
    for manifest in manifests:
        for shard in manifest["shards"]:
            key = (shard["split"], shard["kind"], tuple(shard["resolution"]))
            pool = pools.setdefault(key, {"split": key[0], "kind": key[1], "resolution": list(key[2]),
                                          "stored": shard["stored"], "clips": 0, "shards": []})  # fmt: skip
            pool["clips"] += shard["count"]
            labels = [class_ids[label] if label is not None else -1 for label in shard["labels"]]
            pool["shards"].append({"path": shard["path"], "count": shard["count"], "labels": labels})
    return {"format": FORMAT, "fps": sampling.fps, "clip_frames": sampling.frames, "classes": classes,
            "pools": [pools[key] for key in sorted(pools)]}  # fmt: skip


def _clip_counts(manifests: list[dict[str, Any]], resolution: tuple[int, int]) -> dict[str, dict[str, int]]:
    """Clips per split and kind (counted at one resolution: every resolution holds the same clips)."""
    counts = {split: dict.fromkeys(KINDS, 0) for split in SPLITS}
    for manifest in manifests:
        for shard in manifest["shards"]:
            if tuple(shard["resolution"]) == tuple(resolution):
                counts[shard["split"]][shard["kind"]] += shard["count"]
    return counts


def build_report(data: DataSpec, manifests: list[dict[str, Any]], classes: int, foreign: list[str]) -> dict[str, Any]:
    """Counts per source and split, skipped files with reasons, bytes written, files prepare did not write.

    Nothing about the run itself (seconds, resumed units) goes in: the report is a DVC output, identical
    on every machine for the same inputs.
    """
    first = tuple(data.resolutions[0])
    sources, skipped = [], []
    for number, spec in enumerate(data.sources):
        where = f"data.sources[{number}]"
        mine = [m for m in manifests if m["source"] == number]
        dropped = [{"source": where, **entry} for m in mine for entry in m["skipped"]]
        skipped += dropped
        sources.append({"entry": where, "type": spec.type, "files": sum(m["files"] for m in mine),
                        "skipped": len(dropped), "clips": _clip_counts(mine, first)})  # fmt: skip
    splits = _clip_counts(manifests, first)
    present = [kind for kind in KINDS if any(splits[split][kind] for split in SPLITS)]
    warnings = [f"the {split} split has no {kind} clips" for split in SPLITS for kind in present if not splits[split][kind]]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        warnings.append(f"{len(foreign)} files in {data.prepared_dir} were not written by prepare and are left in place: {shown}")
    return {
        "sources": sources,
        "splits": splits,
        "classes": classes,
        "skipped": skipped,
        "bytes": sum(shard["bytes"] for m in manifests for shard in m["shards"]),
        "units": len(manifests),
        "warnings": warnings,
    }
