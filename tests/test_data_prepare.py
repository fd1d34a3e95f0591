"""``omnipipe prepare``: bad files are skipped with reasons, outputs are deterministic, re-runs resume."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import omnipipe.commands.prepare as prepare_command
from omnipipe.data import source as source_module
from omnipipe.data.prepare import prepare
from omnipipe.data.encode import write_video
from omnipipe.data.shapes import moving_shapes
from omnipipe.data.shards import PreparedIndex
from omnipipe.registry import Registry
from omnipipe.spec.experiment import Experiment
from prepare_setup import data_registry, data_spec, solid_images


@pytest.fixture
def registry() -> Registry:
    return data_registry()


def values_by_split(out: Path) -> dict[str, set[int]]:
    index = PreparedIndex.load(out)
    found: dict[str, set[int]] = {"train": set(), "val": set()}
    for (split, _, _), pool in index.pools.items():
        found[split] |= {round(float(clip.mean())) for clip in pool.read(np.arange(len(pool)))}
    return found


def test_mixed_folder_skips_bad_files_with_reasons(registry: Registry, tmp_path: Path) -> None:
    media = tmp_path / "media"
    write_video(media / "run/good.mp4", moving_shapes(48, 32, 32, seed=0), fps=24)  # 16 frames at 8 fps: 3 clips
    write_video(media / "run/short.mp4", moving_shapes(6, 32, 32, seed=1), fps=24)
    whole = write_video(tmp_path / "whole.mp4", moving_shapes(48, 32, 32, seed=2), fps=24).read_bytes()
    (media / "run/cut.mp4").write_bytes(whole[: len(whole) // 3])
    (media / "run/empty.mp4").write_bytes(b"")
    (media / "run/junk.webm").write_bytes(b"\x1aE\xdf\xa3 not really" * 20)
    solid_images(media / "cat", range(10, 12))
    (media / "cat/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (media / "cat/notes.txt").write_text("not media")
    data = data_spec(registry, tmp_path / "out", [{"type": "manifest", "path": str(tmp_path / "list.csv")}])
    rows = ["run/good.mp4,run", "run/short.mp4", "run/cut.mp4", "run/empty.mp4", "run/junk.webm",
            "cat/img_010.png,cat", "cat/img_011.png,cat", "cat/broken.png", "cat/notes.txt", "gone/missing.png"]  # fmt: skip
    (tmp_path / "list.csv").write_text("\n".join(f"media/{row}" for row in rows) + "\n")

    report = prepare(data, registry, progress=False).report

    reasons = {entry["path"].removeprefix("media/"): entry["reason"] for entry in report["skipped"]}
    assert reasons.pop("run/short.mp4") == "shorter than one clip: 2 frames at 8 fps, a clip needs 5"
    assert reasons.pop("run/empty.mp4") == "empty file (0 bytes)"
    assert reasons.pop("cat/notes.txt") == "unsupported extension '.txt'"
    assert reasons.pop("gone/missing.png") == "file not found"
    assert reasons.pop("run/junk.webm").startswith("undecodable video")
    assert reasons.pop("cat/broken.png").startswith("unreadable image")
    assert reasons.pop("run/cut.mp4")
    assert reasons == {}
    (source,) = report["sources"]
    assert (source["files"], source["skipped"]) == (10, 7)
    clips = {kind: sum(report["splits"][split][kind] for split in ("train", "val")) for kind in ("image", "video")}
    assert clips == {"image": 2, "video": 3}
    assert report["bytes"] > 0 and report["units"] == 1 and report["classes"] == 2
    assert json.loads((tmp_path / "out/prepare_report.json").read_text()) == report
    index = PreparedIndex.load(tmp_path / "out")
    assert index.classes == ["cat", "run"]
    for (_, kind, resolution), pool in index.pools.items():
        assert resolution == (16, 16) and pool.stored == (18, 18)
        assert pool.read(np.arange(len(pool))).shape[1:] == ((5 if kind == "video" else 1), 18, 18, 3)
        assert set(pool.labels) == {0 if kind == "image" else 1}


def test_prepare_is_deterministic(registry: Registry, tmp_path: Path) -> None:
    write_video(tmp_path / "media/a.mp4", moving_shapes(40, 32, 48, seed=3), fps=20)
    solid_images(tmp_path / "media", range(0, 60, 7))
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")},
               {"type": "video_folder", "root": str(tmp_path / "media")}]  # fmt: skip
    for out in ("one", "two"):
        prepare(data_spec(registry, tmp_path / out, sources, resolutions=[[8, 8], [16, 12]]), registry, progress=False)
    one, two = PreparedIndex.load(tmp_path / "one"), PreparedIndex.load(tmp_path / "two")
    assert one.pools.keys() == two.pools.keys() and one.classes == two.classes
    for key, pool in one.pools.items():
        everything = np.arange(len(pool))
        np.testing.assert_array_equal(pool.read(everything), two.pools[key].read(everything))
        np.testing.assert_array_equal(pool.labels, two.pools[key].labels)


def test_split_is_stable_when_files_are_added(registry: Registry, tmp_path: Path) -> None:
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")}]
    solid_images(tmp_path / "media", range(0, 120, 3))
    prepare(data_spec(registry, tmp_path / "out", sources, val_fraction=0.3), registry, progress=False)
    before = values_by_split(tmp_path / "out")
    solid_images(tmp_path / "media", range(1, 120, 3))
    prepare(data_spec(registry, tmp_path / "out", sources, val_fraction=0.3), registry, progress=False)
    after = values_by_split(tmp_path / "out")
    assert before["val"] and before["train"]
    assert before["val"] <= after["val"] and before["train"] <= after["train"]
    assert len(after["val"] | after["train"]) == 80


def test_interrupted_prepare_resumes_without_redoing_finished_units(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    solid_images(tmp_path / "media", range(6))
    data = data_spec(registry, tmp_path / "out", [{"type": "image_folder", "root": str(tmp_path / "media")}],
                     files_per_shard=2, val_fraction=0)  # fmt: skip
    real_read, calls = source_module.read_image, []

    def interrupted(path: Path, fit):
        calls.append(path.name)
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if killed while decoding the third unit
        return real_read(path, fit)

    monkeypatch.setattr(source_module, "read_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(data, registry, progress=False)
    out = tmp_path / "out"
    manifests = {p.name: json.loads(p.read_text()) for p in (out / "units").iterdir()}
    assert sorted(manifests) == ["s00-u00000.json", "s00-u00001.json", "s00-u00002.json"]
    assert manifests["s00-u00002.json"]["content"] is None  # the third unit had claimed its shards, not finished
    assert not (out / "index.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "train").rglob("*.npy")}
    (out / "train/image-16x16/s00-u00002.npy.999.tmp").write_bytes(b"half a shard")

    calls.clear()
    result = prepare(data, registry, progress=False)

    assert calls == ["img_004.png", "img_005.png"]
    assert (result.report["units"], result.resumed) == (3, 2)
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())
    assert values_by_split(out)["train"] == set(range(6))
    assert not list(out.rglob("*.tmp"))


def test_changed_settings_replace_stale_outputs(registry: Registry, tmp_path: Path) -> None:
    solid_images(tmp_path / "media", range(4))
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")}]
    prepare(data_spec(registry, tmp_path / "out", sources, resolutions=[[16, 16]]), registry, progress=False)
    result = prepare(data_spec(registry, tmp_path / "out", sources, resolutions=[[8, 8]]), registry, progress=False)
    assert result.resumed == 0
    assert {p.name for p in (tmp_path / "out").glob("*/*") if p.is_dir()} == {"image-8x8"}


def test_embedded_media_prepares_real_media_quickly(registry: Registry, tmp_path: Path) -> None:
    data = data_spec(registry, tmp_path / "out", [{"type": "embedded_media", "images": ["astronaut", "chelsea"],
                     "max_clips_per_video": 2}], resolutions=[[32, 32]], split_unit="clip", val_fraction=0.3)  # fmt: skip
    result = prepare(data, registry, progress=False)
    report = result.report
    assert report["skipped"] == [] and result.seconds < 20
    assert sum(report["splits"][split]["video"] for split in ("train", "val")) == 6
    index = PreparedIndex.load(tmp_path / "out")
    assert index.classes == ["astronaut", "bigbuckbunny", "bikes", "carphone_pristine", "chelsea"]
    clips = index.pools[("train", "video", (32, 32))].read(np.arange(2))
    assert clips.shape == (2, 5, 36, 36, 3) and clips.std() > 10  # real pictures, not a flat fill


def test_prepare_command_with_two_workers(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    solid_images(tmp_path / "media/a", range(3))
    solid_images(tmp_path / "media/b", range(3, 6))
    data = data_spec(registry, tmp_path / "out", [{"type": "image_folder", "root": str(tmp_path / "media")}],
                     files_per_shard=2, val_fraction=0)  # fmt: skip
    monkeypatch.setattr(prepare_command, "load_spec", lambda path: Experiment.model_construct(name="t", seed=0, data=data))
    monkeypatch.setattr(prepare_command, "get_registry", lambda: registry)
    args = argparse.Namespace(spec="spec.yaml", workers=2, no_progress=True, report=str(tmp_path / "report.json"))
    assert prepare_command.run(args) == 0
    assert capsys.readouterr().out.startswith(f"prepared {tmp_path / 'out'} (train: 6 images, 0 clips, val: 0 images")
    assert json.loads((tmp_path / "report.json").read_text())["splits"]["train"]["image"] == 6
    assert PreparedIndex.load(tmp_path / "out").pools[("train", "image", (16, 16))].labels.tolist() == [0] * 3 + [1] * 3


def test_prepared_files_are_byte_identical_across_locations_and_mtimes(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What DVC hashes (the prepared folder, the report) holds nothing machine-local: no mtimes, no
    absolute paths, no timings — as on two clones of the project in different places."""
    hashes = []
    video = write_video(tmp_path / "a.mp4", moving_shapes(24, 32, 32, seed=0), fps=24).read_bytes()
    for number, clone in enumerate(("clone-a", "deeper/clone-b")):
        project = tmp_path / clone
        (project / "media/run").mkdir(parents=True)
        (project / "media/run/a.mp4").write_bytes(video)  # the same file on both machines (encoding varies)
        solid_images(project / "media/still", range(0, 60, 20))
        (project / "media/still/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # its reason names the file
        (project / "media/still/notes.txt").write_text("not media")
        for path in (project / "media").rglob("*"):
            os.utime(path, ns=(10**18 * (number + 1), 10**18 * (number + 1)))
        monkeypatch.chdir(project)
        data = data_spec(registry, Path("data/prepared"), [{"type": "image_folder", "root": "media/still"},
                         {"type": "video_folder", "root": "media/run"}], val_fraction=0.5)  # fmt: skip
        result = prepare(data, registry, progress=False, report_path="outputs/prepare_report.json")
        assert [entry["path"] for entry in result.report["skipped"]] == ["broken.png", "notes.txt"]
        assert "broken.png" in result.report["skipped"][0]["reason"]  # Pillow names the file: made relative
        hashes.append({path: digest for root in ("data/prepared", "outputs") for path, digest in _hashes(project / root).items()})
    assert hashes[0] == hashes[1] and len(hashes[0]) >= 7


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}
