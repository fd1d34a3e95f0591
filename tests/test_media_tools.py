"""``reconstruct`` and ``tokenize`` on odd files: each bad file is one line and a report entry, the run goes on."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import omnipipe.evaluate.token_shards as token_shards
from omnipipe.cli import main
from omnipipe.data.encode import write_video
from omnipipe.data.shapes import moving_shapes
from omnipipe.evaluate.token_shards import tokenize_folder
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry
from omnipipe.spec.model import ModelSpec
from odd_media import write_odd_media

MODEL = {
    "patchifier": {"type": "omni", "patch_size": 4, "temporal_patch_size": 4},
    "encoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
    "quantizer": {"type": "vq", "codebook_size": 64, "code_dim": 4},
    "decoder": {"width": 32, "num_heads": 2, "spatial": [{"type": "full"}], "temporal": [{"type": "causal"}]},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    Tokenizer.from_spec(ModelSpec.model_validate(MODEL), get_registry()).save(path)
    return path


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, object]]]:
    folder = tmp_path_factory.mktemp("odd") / "media"
    return folder, write_odd_media(folder)


def skip_lines(err: str) -> dict[str, str]:
    lines = [line for line in err.splitlines() if line.startswith("omnipipe: skipped ")]
    return dict(line.removeprefix("omnipipe: skipped ").split(": ", 1) for line in lines)


def test_reconstruct_skips_each_odd_file_with_one_line(
    checkpoint: Path, odd: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, expected = odd
    inputs = [folder / name for name in sorted(expected)] + [folder / "not-there.png"]
    args = ["reconstruct", "--checkpoint", str(checkpoint), *map(str, inputs), "--out", str(tmp_path / "r"),
            "--resolution", "16x16", "--frames", "5"]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    report = json.loads((tmp_path / "r/reconstruct_report.json").read_text())
    skipped = skip_lines(err)
    assert "Traceback" not in err and len(err.splitlines()) == len(skipped) == len(report["skipped"])
    assert {entry["path"] for entry in report["skipped"]} == set(skipped)
    assert {entry["path"] for entry in report["files"]} | set(skipped) == set(map(str, inputs))
    assert skipped[str(folder / "not-there.png")] == "file not found"
    assert skipped[str(folder / "strip_40000x1.png")] == "media of 1×40000 pixels is smaller than the resolution 16×16"
    assert skipped[str(folder / "short.mp4")].startswith("shorter than one clip: 1 frames at 8 fps, a clip needs 5")
    for name, (outcome, _) in expected.items():
        if outcome == "ok":
            assert str(folder / name) not in skipped, (name, skipped.get(str(folder / name)))
    outputs = [entry["output"] for entry in report["files"]]
    assert len(set(outputs)) == len(outputs) and all(Path(o).is_file() for o in outputs)  # same stems do not overwrite
    assert f"{len(skipped)} of {len(inputs)} inputs skipped" in out


def test_tokenize_skips_odd_files_and_lists_them(
    checkpoint: Path, odd: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, expected = odd
    args = ["tokenize", "--checkpoint", str(checkpoint), "--input", str(folder), "--out", str(tmp_path / "t"),
            "--resolution", "16x16", "--frames", "5"]  # fmt: skip
    assert main(args) == 0
    _, err = capsys.readouterr()
    index = json.loads((tmp_path / "t/index.json").read_text())
    skipped = {entry["path"]: entry["reason"] for entry in index["skipped"]}
    assert "Traceback" not in err and skip_lines(err) == {str(folder / path): reason for path, reason in skipped.items()}
    assert skipped["dangling.png"] == "dangling symlink (its target missing.png does not exist)"
    assert skipped["loop.png"] == "symlink loop" and skipped["empty.png"] == "empty file (0 bytes)"
    tokenized = {entry["path"] for entry in index["files"]}
    assert {name for name, (outcome, _) in expected.items() if outcome == "ok"} <= tokenized
    assert not tokenized & set(skipped) and not (tmp_path / "t/parts").exists()
    for shard in {entry["shard"] for entry in index["files"]}:
        rows = np.load(tmp_path / "t" / shard)
        assert len(rows) == sum(entry["shard"] == shard for entry in index["files"])


def test_an_interrupted_tokenize_resumes_where_it_stopped(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "media"
    for number in range(5):
        write_video(folder / f"clip{number}.mp4", moving_shapes(24, 16, 16, seed=number), fps=24)
    model = Tokenizer.from_checkpoint(checkpoint)
    straight = tokenize_folder(model, folder, tmp_path / "straight", (16, 16), 5, 8.0, "cpu", progress=False)
    real_read, calls = token_shards.read_media_pieces, []

    def killed_at_the_fourth(path: Path, *args: object, **kwargs: object) -> tuple[str, Iterator[torch.Tensor]]:
        calls.append(path.name)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(token_shards, "read_media_pieces", killed_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        tokenize_folder(model, folder, tmp_path / "t", (16, 16), 5, 8.0, "cpu", flush_every=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "t/parts").iterdir()) == ["part-00000.npz"]  # clips 0 and 1
    calls.clear()
    resumed = tokenize_folder(model, folder, tmp_path / "t", (16, 16), 5, 8.0, "cpu", flush_every=2, progress=False)
    assert calls == ["clip2.mp4", "clip3.mp4", "clip4.mp4"]
    assert resumed == straight
    np.testing.assert_array_equal(np.load(tmp_path / "t/video-2x4x4.npy"), np.load(tmp_path / "straight/video-2x4x4.npy"))
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["index.json", "video-2x4x4.npy"]
    with pytest.raises(KeyboardInterrupt):  # again, and then a finished file changes before the resume
        calls.clear()
        tokenize_folder(model, folder, tmp_path / "u", (16, 16), 5, 8.0, "cpu", flush_every=2, progress=False)
    write_video(folder / "clip0.mp4", moving_shapes(24, 16, 16, seed=9), fps=24)
    monkeypatch.setattr(token_shards, "read_media_pieces", real_read)
    changed = tokenize_folder(model, folder, tmp_path / "u", (16, 16), 5, 8.0, "cpu", flush_every=2, progress=False)
    fresh = tokenize_folder(model, folder, tmp_path / "v", (16, 16), 5, 8.0, "cpu", progress=False)
    assert changed == fresh
    np.testing.assert_array_equal(np.load(tmp_path / "u/video-2x4x4.npy"), np.load(tmp_path / "v/video-2x4x4.npy"))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--frames", "0"], "--frames 0: a video clip needs at least 5 frames with this tokenizer (1 + k·4); images are always one frame"),
        (["--frames", "3"], "--frames 3: a video clip needs at least 5 frames with this tokenizer (1 + k·4); images are always one frame"),
        (["--device", "gpu"], "--device gpu: not a torch device (e.g. cpu, cuda, cuda:1, mps)"),
        (["--fps", "0"], "--fps 0: expected a positive frame rate"),
    ],
    ids=["frames-0", "frames-3", "device-name", "fps-0"],
)
def test_bad_options_are_one_line(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], error: str
) -> None:
    write_video(tmp_path / "clip.mp4", moving_shapes(24, 16, 16, seed=0), fps=24)
    args = ["reconstruct", "--checkpoint", str(checkpoint), str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "r"),
            "--resolution", "16x16", *options]  # fmt: skip
    assert main(args) == 2
    assert capsys.readouterr().err == f"omnipipe: error: {error}\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_one_line(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tokenize", "--checkpoint", str(checkpoint), "--input", str(tmp_path), "--out", str(tmp_path / "t"), "--device", "cuda"]
    assert main(args) == 2
    assert capsys.readouterr().err == "omnipipe: error: --device cuda: no CUDA GPU is available on this machine; use --device cpu\n"


def test_too_many_frames_and_missing_inputs(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_video(tmp_path / "clip.mp4", moving_shapes(48, 16, 16, seed=0), fps=24)  # 2 s: 16 frames at 8 fps
    base = ["reconstruct", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "r"), "--resolution", "16x16"]
    assert main([*base, str(tmp_path / "clip.mp4"), "--frames", "500"]) == 2
    report = tmp_path / "r/reconstruct_report.json"
    assert capsys.readouterr().err == (
        f"omnipipe: skipped {tmp_path / 'clip.mp4'}: shorter than one clip: 16 frames at 8 fps, a clip needs 497: "
        "lower --frames or --fps\n"
        f"omnipipe: error: no input could be reconstructed (1 skipped, see {report})\n"
    )
    assert main([*base, str(tmp_path / "nope.png")]) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"omnipipe: skipped {tmp_path / 'nope.png'}: file not found"


def test_a_folder_of_same_named_files_keeps_every_output(checkpoint: Path, tmp_path: Path) -> None:
    from PIL import Image

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(moving_shapes(1, 16, 16, seed=len(folder))[0]).save(tmp_path / folder / "x.png")
    assert main(["reconstruct", "--checkpoint", str(checkpoint), str(tmp_path / "a/x.png"), str(tmp_path / "b/x.png"),
                 "--out", str(tmp_path / "r"), "--resolution", "16x16"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["reconstruct_report.json", "x-2.png", "x.png"]


def test_tokenizer_is_part_of_the_public_api(checkpoint: Path) -> None:
    import omnipipe

    assert omnipipe.Tokenizer is Tokenizer and "Tokenizer" in omnipipe.__all__
    assert isinstance(omnipipe.Tokenizer.from_checkpoint(checkpoint), Tokenizer)


def test_tokenize_deletes_only_its_own_files(tmp_path: Path, checkpoint: Path) -> None:
    """``tokenize`` deletes only its own parts and the shards its previous index listed."""
    out = tmp_path / "t"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "image-1x4x4.npy").write_bytes(b"a file with our name that no index of ours lists")
    folder = tmp_path / "media"
    folder.mkdir()
    shutil.copy(checkpoint, folder / "not-media.safetensors")
    write_video(folder / "clip.mp4", moving_shapes(24, 16, 16, seed=0), fps=24)
    assert main(["tokenize", "--checkpoint", str(checkpoint), "--input", str(folder), "--out", str(out),
                 "--resolution", "16x16", "--frames", "5"]) == 0  # fmt: skip
    assert (out / "notes.txt").read_text() == "mine" and (out / "image-1x4x4.npy").exists()
    assert main(["tokenize", "--checkpoint", str(checkpoint), "--input", str(folder), "--out", str(out),
                 "--resolution", "32x32", "--frames", "5"]) == 2  # fmt: skip
    assert not (out / "video-2x4x4.npy").exists()  # listed by the previous index, replaced by nothing


def test_all_frames_of_a_long_video_stream_to_the_whole_clip_codes(checkpoint: Path, tmp_path: Path) -> None:
    from omnipipe.evaluate.media_input import read_video_pieces

    write_video(tmp_path / "media/long.mp4", moving_shapes(40, 16, 16, seed=3), fps=8)  # 40 frames: 37 = 1 + 9·4 used
    model = Tokenizer.from_checkpoint(checkpoint)
    indexes = {
        chunk: tokenize_folder(model, tmp_path / "media", tmp_path / f"t{chunk}", (16, 16), None, 8.0, "cpu", progress=False, chunk=chunk)
        for chunk in (1, 3, None)
    }  # fmt: skip
    assert [entry["frames"] for entry in indexes[1]["files"]] == [37] and indexes[1] == indexes[None] == indexes[3]
    whole = torch.cat(list(read_video_pieces(tmp_path / "media/long.mp4", (16, 16), None, 8.0, at_least=5)), dim=2)
    assert whole.shape[2] == 40
    with torch.inference_mode():
        expected = model.tokenize(whole[:, :, :37])[0].numpy()
    for chunk in (1, 3, None):
        np.testing.assert_array_equal(np.load(tmp_path / f"t{chunk}/video-10x4x4.npy")[0], expected)


def test_reconstruct_streams_all_frames_with_the_whole_clip_psnr(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import av

    write_video(tmp_path / "long.mp4", moving_shapes(30, 16, 16, seed=4), fps=8)  # 29 = 1 + 7·4 frames used
    reports = {}
    for chunk in ("1", "0"):
        out = tmp_path / f"r{chunk}"
        assert main(["reconstruct", "--checkpoint", str(checkpoint), str(tmp_path / "long.mp4"), "--out", str(out),
                     "--resolution", "16x16", "--frames", "all", "--chunk", chunk]) == 0  # fmt: skip
        reports[chunk] = json.loads((out / "reconstruct_report.json").read_text())["files"][0]
        with av.open(str(out / "long.mp4")) as container:
            assert sum(1 for _ in container.decode(video=0)) == 29
    assert reports["1"]["frames"] == reports["0"]["frames"] == 29
    assert reports["1"]["psnr"] == pytest.approx(reports["0"]["psnr"], abs=1e-4)
    assert "(29 frames, 16×16)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "error"),
    [(["--frames", "many"], "--frames many: expected a number of frames or 'all'"),
     (["--chunk", "-1"], "--chunk -1: expected a number of latent frames, or 0 for whole clips")],
)  # fmt: skip
def test_bad_streaming_options_are_one_line(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], error: str
) -> None:
    args = ["tokenize", "--checkpoint", str(checkpoint), "--input", str(tmp_path), "--out", str(tmp_path / "t"), *options]
    assert main(args) == 2
    assert capsys.readouterr().err == f"omnipipe: error: {error}\n"


def test_two_ranks_share_the_files_and_write_what_one_process_writes(checkpoint: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    for number in range(5):
        write_video(tmp_path / f"media/clip{number}.mp4", moving_shapes(48, 16, 16, seed=number), fps=24)
    (tmp_path / "media/bad.png").write_bytes(b"not a picture")
    tokenize = ["tokenize", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "media"), "--resolution", "16x16",
                "--frames", "9", "--out"]  # fmt: skip
    assert main([*tokenize, str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run([*launch, "-m", "omnipipe.cli", *tokenize, str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "one/index.json").read_bytes() == (tmp_path / "two/index.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["index.json", "video-3x4x4.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "one/video-3x4x4.npy"), np.load(tmp_path / "two/video-3x4x4.npy"))
