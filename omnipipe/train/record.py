"""A stage's record for DVC: a few headline numbers and every series, without wall-clock values.

``metrics.json``: ``step``, ``train_loss`` (mean total loss of the last ``TAIL_STEPS`` steps) and the last
value of each of the task's summary keys (``val/psnr`` → ``val_psnr``). ``plots/metrics/``: one
``step<TAB>value`` file per logged series (``time/*`` left out; a step logged twice — after a resume —
keeps its last row). ``plots/images/``: the last pictures. Same run, same bytes: ``dvc.lock`` stays put,
and ``dvc exp show`` / ``dvc metrics diff`` / ``dvc plots diff`` compare runs through git.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from omnipipe.atomic import atomic_write, write_json

TAIL_STEPS = 10
WALL_CLOCK = "time"  # series under this prefix vary from run to run: kept in the live log only


def read_series(tsv: Path) -> list[tuple[int, str]]:
    """``(step, value)`` rows of a dvclive TSV, one per step (the last logged), in step order."""
    lines = tsv.read_text().splitlines()[1:]
    rows = {int(step): value for step, value in (line.split("\t")[-2:] for line in lines if line)}
    return sorted(rows.items())


def write_record(record_dir: Path, live_dir: Path, step: int, summary_keys: Sequence[str]) -> Path:
    """Write ``metrics.json`` and ``plots/`` under ``record_dir`` from dvclive's folder; the metrics file."""
    series_dir = live_dir / "plots" / "metrics"
    plots = record_dir / "plots"
    shutil.rmtree(plots, ignore_errors=True)  # ours alone: series of an earlier run must not linger
    series: dict[str, list[tuple[int, str]]] = {}
    for tsv in sorted(series_dir.rglob("*.tsv")):
        name = tsv.relative_to(series_dir).with_suffix("").as_posix()
        if name.split("/")[0] == WALL_CLOCK:
            continue
        series[name] = rows = read_series(tsv)
        text = f"step\t{tsv.stem}\n" + "".join(f"{at}\t{value}\n" for at, value in rows)
        atomic_write(plots / "metrics" / f"{name}.tsv", lambda file, text=text: file.write(text.encode()))
    for image in sorted((live_dir / "plots" / "images").glob("*.png")):
        data = image.read_bytes()
        atomic_write(plots / "images" / image.name, lambda file, data=data: file.write(data))
    metrics: dict[str, float | int] = {"step": step}
    tail = [float(value) for _, value in series.get("loss/total", [])[-TAIL_STEPS:]]
    if tail:
        metrics["train_loss"] = sum(tail) / len(tail)
    for key in summary_keys:
        if series.get(key):
            metrics[key.replace("/", "_")] = float(series[key][-1][1])
    path = record_dir / "metrics.json"
    write_json(path, metrics)
    return path
