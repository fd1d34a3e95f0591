"""The command line: every shipped spec validates; user errors are one line each and exit 2."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import omnipipe
from omnipipe.cli import build_parser, main

PIPELINES = sorted((Path(__file__).parents[1] / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("spec", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_shipped_specs_validate(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(spec)]) == 0
    assert capsys.readouterr().out.startswith(f"{spec}: ok")


def test_validate_reports_each_bad_file_on_its_own_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = PIPELINES[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("codebook_size:", "codebook_sise:", 1))
    assert main(["validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}: ok")
    lines = err.splitlines()
    assert any(line.startswith(f"omnipipe: error: {bad}:") and "codebook_sise: extra field not permitted — did you mean codebook_size?" in line for line in lines)
    assert "Traceback" not in err


def test_schema_lists_builtin_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    quantizers = {option["properties"]["type"]["const"] for option in schema["$defs"]["QuantizerSpec"]["oneOf"]}
    assert {"vq", "kl"} <= quantizers


def test_components_filter_by_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["components", "--kind", "attention"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert sorted(row.split()[1] for row in rows) == ["causal", "full", "window"]


def test_unknown_kind_and_stage_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["components", "--kind", "quantiser"]) == 2
    assert capsys.readouterr().err == (
        "omnipipe: error: unknown kind 'quantiser' — did you mean quantizer? (kinds: patchifier, attention, "
        "quantizer, loss, discriminator, generator, metric, dataset)\n"
    )
    assert main(["train", "--spec", str(PIPELINES[0]), "--stage", "pretrain"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"omnipipe: error: {PIPELINES[0]}: no stage 'pretrain' in train.stages (image_pretrain, kl_finetune)"
        " — did you mean image_pretrain?\n"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out == f"omnipipe {omnipipe.__version__}\n"


def test_every_sub_command_help_shows_the_defaults() -> None:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    shown = 0
    for name, subparser in subparsers.choices.items():
        text = " ".join(subparser.format_help().split())
        for action in subparser._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in text, (name, action.dest)
                shown += 1
    assert shown >= 8  # e.g. reconstruct --resolution 256x256, prepare --workers, evaluate --device


def test_a_closed_pipe_ends_quietly() -> None:
    """``omnipipe schema | head``: the reader goes away; no BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "omnipipe.cli", "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait() == 141 and err == ""
