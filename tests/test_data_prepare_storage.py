"""A full disk or a read-only folder during ``prepare``: one line naming the path, nothing partial left, resumable."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnipipe.data.prepare import prepare
from omnipipe.data.shards import PreparedIndex
from omnipipe.registry import Registry
from omnipipe.storage import StorageError
from mounts import read_only, resize_tmpfs, small_tmpfs
from prepare_setup import data_registry, data_spec, solid_images


@pytest.fixture
def registry() -> Registry:
    return data_registry()


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_full_disk_is_one_line_leaves_nothing_partial_and_resumes(registry: Registry, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for value in range(12):  # noise does not compress: each 2-image shard takes ~30 KiB
        Image.fromarray(np.random.default_rng(value).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(media / f"{value:02d}.png")
    with small_tmpfs(tmp_path / "disk", kib=96) as disk:
        data = data_spec(registry, disk / "out", [{"type": "image_folder", "root": str(media)}],
                         resolutions=[[64, 64]], crop_margin=0, files_per_shard=2, val_fraction=0)  # fmt: skip
        with pytest.raises(StorageError) as caught:
            prepare(data, registry, progress=False)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"{disk / 'out'}/")
        assert message.endswith(": cannot write: no space left on the device: free some space there or write "
                                "elsewhere, then run the command again: finished work is kept")  # fmt: skip
        assert not list(disk.rglob("*.tmp"))
        finished = len(list((disk / "out/train/image-64x64").glob("*.npy")))
        assert 1 <= finished < 6

        resize_tmpfs(disk, kib=2048)
        result = prepare(data, registry, progress=False)

        assert result.resumed >= finished - 1 and result.report["units"] == 6  # the unit that failed may be the last shard's
        clips = PreparedIndex.load(disk / "out").pools[("train", "image", (64, 64))]
        originals = sorted(np.asarray(Image.open(p)).mean() for p in media.iterdir())
        np.testing.assert_allclose(sorted(clip.mean() for clip in clips.read(np.arange(12))), originals)


def test_read_only_folder_is_one_line_and_untouched(registry: Registry, tmp_path: Path) -> None:
    solid_images(tmp_path / "media", range(4))
    sources = [{"type": "image_folder", "root": str(tmp_path / "media")}]
    out = tmp_path / "out"
    prepare(data_spec(registry, out, sources, resolutions=[[16, 16]]), registry, progress=False)
    before = snapshot(out)
    (tmp_path / "empty").mkdir()
    with read_only(out), read_only(tmp_path / "empty"):
        with pytest.raises(StorageError) as changed:
            prepare(data_spec(registry, out, sources, resolutions=[[8, 8]]), registry, progress=False)
        with pytest.raises(StorageError) as new:
            prepare(data_spec(registry, tmp_path / "empty", sources), registry, progress=False)
    assert str(changed.value) == (
        f"{out}: cannot write: the file system is read-only: write elsewhere or remount it writable, "
        "then run the command again: finished work is kept"
    )
    assert str(new.value).startswith(f"{tmp_path / 'empty' / 'omnipipe-prepared.json'}: cannot write: the file system is read-only")
    assert snapshot(out) == before and not any((tmp_path / "empty").iterdir())
