"""The evaluation summary and the README table: every version side by side, intervals, counts, networks."""
from __future__ import annotations

from omnipipe.evaluate.summary import readme_table, summary_markdown

RESULTS = {
    "stages": {"joint": {"path": "o/joint/model.safetensors", "sha256": "ab" * 32, "bottleneck": "vq", "steps": 300},
               "kl_finetune": {"path": "o/kl/model.safetensors", "sha256": "cd" * 32, "bottleneck": "kl", "steps": 150}},
    "samples": {"clip-32x48": {"distinct": 8, "frames_each": 5}},
    "joint": {"clip-32x48": {"psnr": 20.5, "fid": 313.7, "codebook_usage": 0.78}},
    "kl_finetune": {"clip-32x48": {"psnr": 21.25, "fid": 300.0}},
    "baseline_bicubic": {"clip-32x48": {"psnr": 21.0, "fid": 387.4}},
    "intervals": {"joint": {"clip-32x48": {"psnr": [19.2, 21.8], "fid": [294.1, 350.7]}}, "kl_finetune": {}, "baseline_bicubic": {}},
    "bootstrap": {"resamples": 200, "confidence": 0.95, "unit": "distinct val sample"},
    "networks": {"fid": "FID Inception; weights: x"},
    "unavailable": {"lpips": "lpips: no backbone weights file at /x"},
}  # fmt: skip


def test_summary_tables_every_version_with_intervals_and_sources() -> None:
    text = summary_markdown(RESULTS, "tiny", ["joint", "kl_finetune", "baseline_bicubic"])
    assert "## clip-32x48: 8 distinct clips of 5 frames" in text
    assert "| psnr | 20.5 [19.2, 21.8] | 21.25 | 21 |" in text
    assert "| fid (lower is better) | 313.7 [294.1, 350.7] | 300 | 387.4 |" in text
    assert "| codebook_usage | 0.78 | — | — |" in text
    assert "- `joint` (vq, 300 steps): `o/joint/model.safetensors`, sha256 `abababababababab…`" in text
    assert "- `fid`: FID Inception; weights: x" in text and "- `lpips`: lpips: no backbone weights file at /x" in text
    assert "95 % bootstrap intervals (200 resamples" in text


def test_readme_table_has_a_row_per_version() -> None:
    rows = readme_table(RESULTS).splitlines()
    assert rows[0].startswith("| val samples | version | PSNR dB | SSIM | LPIPS | rFID | rFVD |")
    assert rows[2].startswith("| 8 clips of 5 frames, 32×48 | joint (vq) | 20.5 [19.2, 21.8] | — | — | 313.7 [294.1, 350.7] | — | 0.78 |")
    assert rows[3].startswith("| 8 clips of 5 frames, 32×48 | kl_finetune (kl) | 21.25 |") and "| bicubic |" in rows[4]
