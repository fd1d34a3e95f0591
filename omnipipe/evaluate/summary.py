"""A short markdown summary of an evaluation: one table per group of samples, every version side by side."""
from __future__ import annotations

from typing import Any

LOWER_IS_BETTER = ("lpips", "fid", "fvd")


def _cell(value: float, interval: list[float] | None) -> str:
    return f"{value:.4g}" + (f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "")


def summary_markdown(results: dict[str, Any], name: str, versions: list[str]) -> str:
    """Tables of ``results`` (see ``evaluate.run.evaluate``) for ``versions`` (tokenizer stages, then the baseline)."""
    stages = results["stages"]
    confidence = round(100 * results["bootstrap"]["confidence"])
    lines = [f"# {name}: {', '.join(f'`{s}`' for s in stages)} on the val split, next to the bicubic baseline", ""]
    lines += ["Checkpoints measured:", ""]
    lines += [f"- `{stage}` ({info['bottleneck']}, {info['steps']} steps): `{info['path']}`, sha256 `{info['sha256'][:16]}…`"
              for stage, info in stages.items()]  # fmt: skip
    lines.append("")
    if results["bootstrap"]["resamples"]:
        lines += [f"Brackets: {confidence} % bootstrap intervals ({results['bootstrap']['resamples']} resamples of the "
                  "distinct val samples of each group).", ""]  # fmt: skip
    for group, sizes in results["samples"].items():
        count, frames = sizes["distinct"], sizes["frames_each"]
        what = f"{count} distinct {'images' if frames == 1 else f'clips of {frames} frames'}"
        lines += [f"## {group}: {what}", "", "| metric | " + " | ".join(versions) + " |", "|---" * (len(versions) + 1) + "|"]
        keys = list(dict.fromkeys(key for version in versions for key in results[version].get(group, {})))
        for key in keys:
            cells = []
            for version in versions:
                value = results[version].get(group, {}).get(key)
                interval = results["intervals"].get(version, {}).get(group, {}).get(key)
                cells.append("—" if value is None else _cell(value, interval))
            better = " (lower is better)" if key.startswith(LOWER_IS_BETTER) else ""
            lines.append(f"| {key}{better} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Pictures (`grids/`) and videos (`videos/`) show, left to right: target | " + " | ".join(versions) + ".", ""]
    if results["networks"]:
        lines += ["## Networks and weights", ""]
        lines += [f"- `{metric}`: {description}" for metric, description in results["networks"].items()]
        lines.append("")
    if results["unavailable"]:
        lines += ["## Not computed", ""]
        lines += [f"- `{metric}`: {reason}" for metric, reason in results["unavailable"].items()]
        lines.append("")
    return "\n".join(lines)


README_COLUMNS = {"psnr": "PSNR dB", "ssim": "SSIM", "lpips": "LPIPS", "fid": "rFID", "fvd": "rFVD",
                  "codebook_usage": "codebook usage", "bits_per_pixel": "bits/pixel"}  # fmt: skip


def readme_table(results: dict[str, Any]) -> str:
    """One compact markdown table of an evaluation's ``report.json``: a row per group and version, intervals in brackets."""
    versions = [*results["stages"], "baseline_bicubic"]
    lines = ["| val samples | version | " + " | ".join(README_COLUMNS.values()) + " |", "|---" * (len(README_COLUMNS) + 2) + "|"]
    for group, sizes in results["samples"].items():
        kind, size = group.split("-", 1)
        frames = sizes["frames_each"]
        what = f"{sizes['distinct']} {kind}s{f' of {frames} frames' if frames > 1 else ''}, {size.replace('x', '×')}"
        for version in versions:
            values = results[version].get(group, {})
            intervals = results["intervals"].get(version, {}).get(group, {})
            label = f"{version} ({results['stages'][version]['bottleneck']})" if version in results["stages"] else "bicubic"
            cells = ["—" if key not in values else _cell(values[key], intervals.get(key) if key in ("psnr", "fid", "fvd") else None)
                     for key in README_COLUMNS]  # fmt: skip
            lines.append(f"| {what} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m omnipipe.evaluate.summary outputs/tiny/evaluate/report.json
    import json
    import sys

    print(readme_table(json.loads(open(sys.argv[1], encoding="utf-8").read())))
