"""A short markdown summary of an evaluation: one table per kind, tokenizer next to the baseline."""
from __future__ import annotations

from typing import Any

LOWER_IS_BETTER = ("lpips", "fid", "fvd")


def summary_markdown(results: dict[str, Any], name: str) -> str:
    lines = [f"# {name}: evaluation of stage `{results['stage']}` on the val split", ""]
    for kind, count in results["samples"].items():
        if not count:
            continue
        ours = results["tokenizer"].get(kind, {})
        base = results["baseline_bicubic"].get(kind, {})
        lines += [f"## {kind}s ({count})", "", "| metric | tokenizer | bicubic baseline |", "| --- | --- | --- |"]
        for key, value in ours.items():
            better = "lower is better" if key.startswith(LOWER_IS_BETTER) else ""
            shown = f"{base[key]:.4g}" if key in base else "—"
            lines.append(f"| {key}{f' ({better})' if better else ''} | {value:.4g} | {shown} |")
        lines.append("")
    if results["unavailable"]:
        lines += ["## Not computed", ""]
        lines += [f"- `{metric}`: {reason}" for metric, reason in results["unavailable"].items()]
        lines.append("")
    return "\n".join(lines)
