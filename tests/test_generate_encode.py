"""Digit sources and the token-dataset stage: real labelled data → prepared clips → token shards."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from omnipipe.data.digits import MovingDigits, bounce, load_digit_table, digits_file
from omnipipe.data.errors import DataError
from omnipipe.data.loader import crop_clips, to_pixels
from omnipipe.data.prepare import prepare
from omnipipe.data.shards import PreparedIndex
from omnipipe.generate.encode import encode_tokens, select_classes
from omnipipe.generate.paths import GenerationPaths
from omnipipe.nn.tokenizer import Tokenizer
from omnipipe.plugins import get_registry
from omnipipe.spec.loader import parse_spec
from omnipipe.train.paths import StagePaths

TINY = Path(__file__).resolve().parents[1] / "pipelines" / "tiny.yaml"


def test_digit_table_is_scikit_learns() -> None:
    from sklearn.datasets import load_digits

    pictures, digits = load_digit_table(digits_file())
    reference = load_digits()
    assert np.array_equal(digits, reference.target) and np.allclose(pictures * 16, reference.images)


def test_bounce_reflects_at_both_walls() -> None:
    assert bounce(1.0, 2.0, 6, 4.0).tolist() == [1.0, 3.0, 3.0, 1.0, 1.0, 3.0]
    assert bounce(0.5, -1.0, 3, 4.0).tolist() == [0.5, 0.5, 1.5]


def test_moving_digit_is_the_digit_at_its_trajectory() -> None:
    source = MovingDigits(MovingDigits.Params(max_digits=3, seed=4))
    item = source.scan()[2]
    from omnipipe.data.media import ClipSampling

    clip = source.clips(item, ClipSampling(8, 5, 2), (32, 32))[0]  # (5, 32, 32, 3)
    rows, cols = source.trajectory(2, 5, 32 - 16, 32)
    picture = np.round(load_digit_table(digits_file())[0][2] * 255)
    for frame, (row, col) in enumerate(zip(np.round(rows).astype(int), np.round(cols).astype(int))):
        block = clip[frame, row : row + 16, col : col + 16, 0]
        assert np.array_equal(block[::2, ::2], picture) and clip[frame].sum() == block.sum() * 3
    assert item.label == "digit-2" and np.array_equal(clip, source.clips(item, ClipSampling(8, 5, 2), (32, 32))[0])


@pytest.fixture(scope="module")
def encoded_spec(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("encode")
    data = yaml.safe_load(TINY.read_text())
    data["outputs"] = {"dir": str(root / "outputs")}
    data["data"].update(sources=[{"type": "digits", "max_digits": 60}, {"type": "moving_digits", "max_digits": 10},
                                 {"type": "embedded_media", "images": ["astronaut"], "videos": []}],
                        prepared_dir=str(root / "prepared"), resolutions=[[32, 32]], val_fraction=0.25)  # fmt: skip
    data["generate"]["tokens"] = {"digits": {"tokenizer": "joint", "classes": ["digit-*"], "flip": True,
                                             "chunk_clips": 16, "batch_size": 8}}  # fmt: skip
    data["generate"]["generators"] = {}
    data["evaluate"].pop("resolutions")
    spec = parse_spec(yaml.safe_dump(data), "tiny.yaml", get_registry())
    prepare(spec.data, get_registry(), progress=False)
    torch.manual_seed(0)
    model = Tokenizer.from_spec(spec.model)
    StagePaths.of(spec, "joint").model_file.parent.mkdir(parents=True)
    model.save(StagePaths.of(spec, "joint").model_file)
    return spec, model


def test_tokens_are_the_tokenizers_codes_of_the_selected_clips(encoded_spec) -> None:  # noqa: ANN001
    spec, model = encoded_spec
    data = encode_tokens(spec, "digits", get_registry(), device="cpu", progress=False)
    assert data.classes == [f"digit-{d}" for d in range(10)] and data.layout.grid == (1, 8, 8)
    assert data.layout.num_classes == 10 and data.layout.vocab_size == 256
    prepared = PreparedIndex.load(spec.data.prepared_dir)
    for split in ("train", "val"):
        pool = prepared.pool(split, "image", (32, 32))
        part = data.split(split)
        originals = part.originals()
        assert sorted(part.clips[originals].tolist()) == [i for i, l in enumerate(pool.labels) if prepared.classes[l].startswith("digit")]
        pixels = to_pixels(crop_clips(pool.read(part.clips[originals]), (32, 32), None))
        with torch.inference_mode():
            codes = model.eval().tokenize(pixels).flatten(1)
        assert torch.equal(part.tokens(originals), codes)
        names = [prepared.classes[l] for l in pool.labels[part.clips[originals]]]
        assert [data.classes[l] for l in part.labels[originals]] == names
    train = data.split("train")
    flipped = np.nonzero(train.flipped)[0]
    assert len(flipped) == len(train.originals()) and len(data.split("val").originals()) == len(data.split("val"))
    pixels = to_pixels(crop_clips(prepared.pool("train", "image", (32, 32)).read(train.clips[flipped]), (32, 32), None))
    with torch.inference_mode():
        assert torch.equal(train.tokens(flipped), model.tokenize(pixels.flip(-1)).flatten(1))


def test_a_rerun_keeps_finished_chunks_and_a_changed_setting_reencodes(encoded_spec) -> None:  # noqa: ANN001
    spec, _ = encoded_spec
    root = GenerationPaths.of(spec).tokens("digits")
    encode_tokens(spec, "digits", get_registry(), device="cpu", progress=False)
    chunks = sorted((root / "train").glob("*-tokens.npy"))
    assert len(chunks) > 1
    before = {path: path.stat().st_mtime_ns for path in chunks}
    chunks[0].unlink()  # as if killed before this chunk finished
    encode_tokens(spec, "digits", get_registry(), device="cpu", progress=False)
    after = {path: path.stat().st_mtime_ns for path in chunks}
    assert after[chunks[0]] != before[chunks[0]] and all(after[p] == before[p] for p in chunks[1:])
    spec.generate.tokens["digits"].flip = False
    data = encode_tokens(spec, "digits", get_registry(), device="cpu", progress=False)
    assert not data.split("train").flipped.any()
    assert len(list((root / "train").glob("*-tokens.npy"))) == len(data.split("train").chunks)  # stale ones removed
    spec.generate.tokens["digits"].flip = True


def test_long_clips_stream_through_the_tokenizer_to_the_same_codes(encoded_spec) -> None:  # noqa: ANN001
    from omnipipe.spec.generate import TokenDatasetSpec

    spec, model = encoded_spec
    spec.generate.tokens["moving"] = TokenDatasetSpec(tokenizer="joint", kind="video", stream_chunk=1, chunk_clips=64)
    try:
        data = encode_tokens(spec, "moving", get_registry(), device="cpu", progress=False)
    finally:
        del spec.generate.tokens["moving"]
    pool = PreparedIndex.load(spec.data.prepared_dir).pool("train", "video", (32, 32))
    part = data.split("train")
    pixels = to_pixels(crop_clips(pool.read(part.clips), (32, 32), None))
    assert pixels.shape[2] > 1  # at least two latent frames: streamed as chunks of one
    with torch.inference_mode():
        assert torch.equal(part.tokens(np.arange(len(part))), model.eval().tokenize(pixels).flatten(1))


def test_class_patterns_that_match_nothing_name_the_entry() -> None:
    with pytest.raises(DataError, match=r"generate\.tokens\.x: no prepared class matches \['cat-\*'\] \(classes: a, b\)"):
        select_classes(["a", "b"], ["cat-*"], "generate.tokens.x")
    names, mapping = select_classes(["astronaut", "digit-0", "digit-1"], ["digit-*"], "w")
    assert names == ["digit-0", "digit-1"] and mapping.tolist() == [-1, 0, 1, -1]
