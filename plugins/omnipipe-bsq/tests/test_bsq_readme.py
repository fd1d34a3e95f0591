"""The README's Python example runs as written (against the installed entry point)."""
from __future__ import annotations

from pathlib import Path

from omnipipe.plugin_testing import require_distribution, run_readme_examples

README = Path(__file__).resolve().parents[1] / "README.md"


def test_bsq_readme_example_runs() -> None:
    require_distribution("omnipipe-bsq")  # the example loads the installed entry point
    assert run_readme_examples(README) >= 1
