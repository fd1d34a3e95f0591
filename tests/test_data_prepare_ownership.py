"""``prepare`` deletes only what its own manifests say it wrote; any other folder is refused untouched."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from omnipipe.data.errors import DataError
from omnipipe.data.ownership import MARKER_FILE
from omnipipe.data.prepare import prepare
from omnipipe.registry import Registry
from prepare_setup import data_registry, data_spec, solid_images


@pytest.fixture
def registry() -> Registry:
    return data_registry()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_a_user_folder_with_train_val_units_is_refused_untouched(registry: Registry, tmp_path: Path) -> None:
    """The reported data loss: prepared_dir pointed at a raw dataset root with train/, val/ and units/."""
    solid_images(tmp_path / "media", range(3))
    raw = tmp_path / "imagenet"
    solid_images(raw / "train/n01440764", range(5))
    solid_images(raw / "train/n01443537", range(5, 9))
    solid_images(raw / "val/n01440764", range(9, 11))
    (raw / "units").mkdir()
    (raw / "units/s00-u00000.json").write_text('{"notes": "mine"}')  # a name of our layout, not our content
    (raw / "LICENSE.txt").write_text("user data")
    before = snapshot(raw)
    assert len(before) == 13

    data = data_spec(registry, raw, [{"type": "image_folder", "root": str(tmp_path / "media")}])
    with pytest.raises(DataError) as caught:
        prepare(data, registry, spec_path="x.yaml", progress=False)

    assert str(caught.value) == (
        f"x.yaml: data.prepared_dir: {raw} is not empty and was not written by omnipipe prepare (no {MARKER_FILE}); "
        "prepare only writes into a new or empty folder or one it prepared before: choose another folder"
    )
    assert snapshot(raw) == before


def test_foreign_files_in_a_prepared_folder_are_kept_and_reported(registry: Registry, tmp_path: Path) -> None:
    solid_images(tmp_path / "media", range(4))
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")}]
    out = tmp_path / "out"
    prepare(data_spec(registry, out, sources, resolutions=[[16, 16]], val_fraction=0), registry, progress=False)
    (out / "train/image-16x16/notes.txt").write_text("mine")
    (out / "train/image-16x16/s00-u00007.npy").write_bytes(b"not listed by any manifest")
    (out / "units/s00-u00009.json").write_text(json.dumps({"shards": [{"path": "../../victim.txt"}]}))
    (tmp_path / "victim.txt").write_text("outside")

    result = prepare(data_spec(registry, out, sources, resolutions=[[8, 8]], val_fraction=0), registry, progress=False)

    assert (out / "train/image-16x16/notes.txt").read_text() == "mine"
    assert (out / "train/image-16x16/s00-u00007.npy").exists() and (out / "units/s00-u00009.json").exists()
    assert (tmp_path / "victim.txt").read_text() == "outside"
    assert not (out / "train/image-16x16/s00-u00000.npy").exists()  # the stale shard its manifest listed is gone
    assert result.report["warnings"][1:] == [
        f"3 files in {out} were not written by prepare and are left in place: train/image-16x16/notes.txt, "
        "train/image-16x16/s00-u00007.npy, units/s00-u00009.json"
    ]


def test_a_killed_unit_is_cleaned_up_from_its_claim(registry: Registry, tmp_path: Path) -> None:
    """A unit killed after writing a shard but before its final manifest: the claim lists the shard."""
    solid_images(tmp_path / "media", range(2))
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")}]
    out = tmp_path / "out"
    prepare(data_spec(registry, out, sources, resolutions=[[16, 16]], val_fraction=0), registry, progress=False)
    claimed = ["train/image-16x16/s00-u00000.npy", "val/image-16x16/s00-u00000.npy", "train/video-16x16/s00-u00000.npy"]
    (out / "units/s00-u00000.json").write_text(json.dumps({"plan": "x", "content": None, "shards": [{"path": p} for p in claimed]}))
    orphan = out / "train/video-16x16/s00-u00000.npy"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half a run")
    (out / "units/s00-u00000.json.4242.tmp").write_text("partial")

    result = prepare(data_spec(registry, out, sources, resolutions=[[8, 8]], val_fraction=0), registry, progress=False)

    assert result.resumed == 0 and result.report["warnings"] == ["the val split has no image clips"]
    assert sorted(snapshot(out)) == [
        "index.json", MARKER_FILE, "prepare_report.json", "train/image-8x8/s00-u00000.npy", "units/s00-u00000.json"
    ]


def test_a_folder_prepared_before_the_marker_existed_is_adopted(registry: Registry, tmp_path: Path) -> None:
    solid_images(tmp_path / "media", range(2))
    data = data_spec(registry, tmp_path / "out", [{"type": "image_folder", "root": str(tmp_path / "media")}])
    prepare(data, registry, progress=False)
    (tmp_path / "out" / MARKER_FILE).unlink()
    assert prepare(data, registry, progress=False).resumed == 1
    assert (tmp_path / "out" / MARKER_FILE).is_file()


def test_a_prepared_folder_inside_a_source_is_refused(registry: Registry, tmp_path: Path) -> None:
    solid_images(tmp_path / "media", range(2))
    (tmp_path / "media/prepared").mkdir()
    (tmp_path / "media/prepared/index.json").write_text("{}")
    data = data_spec(registry, tmp_path / "media/prepared", [{"type": "image_folder", "root": str(tmp_path / "media")}])
    with pytest.raises(DataError, match=r"data.sources\[0\] lists prepared/index.json, inside data.prepared_dir .*: "
                                        "prepare would read its own output"):
        prepare(data, registry, progress=False)
