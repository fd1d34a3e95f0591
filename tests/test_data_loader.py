"""The loader: batch shapes and range, determinism, image/video mix, DDP rank splitting, worker processes."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from omnipipe.data.components import register
from omnipipe.data.errors import DataError
from omnipipe.data.loader import make_loader
from omnipipe.data.prepare import prepare
from omnipipe.data.sampler import PlannedBatches, train_plan
from omnipipe.data.shapes import write_shapes_folder
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec, MixSpec
from omnipipe.spec.experiment import Experiment
from omnipipe.spec.train import StageSpec


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """Prepared data: 24 labelled images and 2 classes × 3 shapes videos (4 clips each), at 8×8 and 16×16."""
    root = tmp_path_factory.mktemp("loader")
    for number in range(24):
        path = root / "images" / f"class_{number % 3}" / f"{number:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(number).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
    write_shapes_folder(root / "videos", classes=2, per_class=3, frames=36, height=32, width=32)
    registry = Registry()
    register(registry)
    data = DataSpec.model_validate({
        "sources": [{"type": "image_folder", "root": str(root / "images")},
                    {"type": "video_folder", "root": str(root / "videos")}],
        "prepared_dir": str(root / "prepared"), "resolutions": [[8, 8], [16, 16]],
        "fps": 8, "clip_frames": 3, "clip_stride": 2, "val_fraction": 0.2,
    })  # fmt: skip
    for entry in data.sources:
        entry.resolve(registry)
    prepare(data, registry, progress=False)
    return Experiment.model_construct(name="loader", seed=7, data=data)


def stage(data: str = "joint", batch_size: int = 2, resolutions=None) -> StageSpec:
    return StageSpec(data=data, steps=10, batch_size=batch_size, resolutions=resolutions)


def collect(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(batch.pixels, batch.labels) for batch in loader]


def test_joint_batches_alternate_kinds_and_resolutions(spec: Experiment) -> None:
    batches = collect(make_loader(spec, stage(), num_batches=12))
    assert len(batches) == 12
    assert [pixels.shape[2] for pixels, _ in batches] == [1, 3] * 6  # image, video, image, ...
    assert {pixels.shape[-1] for pixels, _ in batches} == {8, 16}
    for pixels, labels in batches:
        assert pixels.dtype == torch.float32 and pixels.shape[:2] == (2, 3) and pixels.shape[-2] == pixels.shape[-1]
        assert -1.0 <= pixels.min() < pixels.max() <= 1.0
        assert labels.dtype == torch.int64 and labels.shape == (2,)
    image_labels = torch.cat([labels for pixels, labels in batches if pixels.shape[2] == 1])
    assert set(image_labels.tolist()) <= {0, 1, 2}  # classes are shared by name: class_0, class_1, class_2
    video_labels = torch.cat([labels for pixels, labels in batches if pixels.shape[2] == 3])
    assert set(video_labels.tolist()) <= {0, 1}


def test_image_stage_and_ratio(spec: Experiment) -> None:
    images = collect(make_loader(spec, stage("images", resolutions=[[16, 16]])))
    assert images and all(p.shape[2:] == (1, 16, 16) for p, _ in images)
    spec_mix = spec.model_copy(update={"data": spec.data.model_copy(update={"mix": spec.data.mix.model_copy(
        update={"schedule": "random", "image_fraction": 0.75})})})  # fmt: skip
    kinds = [p.shape[2] for p, _ in collect(make_loader(spec_mix, stage(), num_batches=200))]
    assert 0.65 < kinds.count(1) / len(kinds) < 0.85


def test_deterministic_from_seed_and_epoch(spec: Experiment) -> None:
    first = collect(make_loader(spec, stage(), epoch=0, num_batches=6))
    again = collect(make_loader(spec, stage(), epoch=0, num_batches=6))
    other = collect(make_loader(spec, stage(), epoch=1, num_batches=6))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(a[0].shape == b[0].shape and torch.equal(a[0], b[0]) for a, b in zip(first, other))
    resumed = collect(make_loader(spec, stage(), epoch=0, num_batches=2, start_batch=4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first[4:], resumed))


def test_num_workers_gives_the_same_batches(spec: Experiment) -> None:
    serial = collect(make_loader(spec, stage(), num_batches=6))
    parallel = collect(make_loader(spec, stage(), num_batches=6, num_workers=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(serial, parallel))


def test_ranks_get_disjoint_clips_with_equal_shapes(spec: Experiment) -> None:
    loaders = [make_loader(spec, stage("images", batch_size=3), rank=r, world_size=2) for r in range(2)]
    per_rank = [[loader.dataset.plans[i] for i in range(len(loader.dataset))] for loader in loaders]
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    for a, b in zip(*per_rank):
        assert (a.kind, a.resolution) == (b.kind, b.resolution)
    seen = [{index for plan in plans for index in plan.indices} for plans in per_rank]
    assert not seen[0] & seen[1]
    assert all(p.shape[0] == 3 for p, _ in collect(loaders[1]))


def test_ranks_together_equal_one_process_with_the_doubled_batch(spec: Experiment) -> None:
    """Same clips, same crops and flips: what DDP's gradient averaging needs to match one process."""
    single = collect(make_loader(spec, stage("joint", batch_size=4), num_batches=4))
    ranks = [collect(make_loader(spec, stage("joint", batch_size=2), rank=r, world_size=2, num_batches=4)) for r in range(2)]
    for whole, part0, part1 in zip(single, *ranks):
        assert torch.equal(whole[0], torch.cat([part0[0], part1[0]]))
        assert torch.equal(whole[1], torch.cat([part0[1], part1[1]]))


def test_val_covers_every_clip_once_with_centre_crops(spec: Experiment) -> None:
    loader = make_loader(spec, stage("joint", batch_size=4, resolutions=[[8, 8]]), split="val")
    plans = loader.dataset.plans
    for kind in ("image", "video"):
        indices = [i for plan in plans if plan.kind == kind for i in plan.indices]
        assert sorted(indices) == list(range(len(indices))) and indices
    first = collect(loader)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, collect(loader)))


def test_unprepared_resolution_is_a_clear_error(spec: Experiment) -> None:
    with pytest.raises(DataError, match=r"no image clips in the train split at 32x32 \(prepared: .*train/image-16x16"):
        make_loader(spec, stage(resolutions=[[32, 32]]))
    with pytest.raises(DataError, match="cannot fill one step"):
        make_loader(spec, stage(batch_size=50))


def test_planned_batches_are_the_eager_plan_in_any_order() -> None:
    args = ({"image": 10, "video": 7}, [(8, 8), (16, 16)], 2, MixSpec(schedule="random", image_fraction=0.4), 3, 1, 1, 2)
    eager = train_plan(*args, num_batches=40)
    lazy = PlannedBatches(args, start=5, end=40)
    order = [0, 1, 2, 30, 31, 7, 34, 0]  # forwards, a jump back (restarts the stream), repeats
    assert [lazy[i] for i in order] == [eager[5 + i] for i in order]
    copied = pickle.loads(pickle.dumps(lazy))  # what a loader worker gets
    assert len(copied) == 35 and list(copied) == eager[5:]
    with pytest.raises(IndexError):
        lazy[35]


def test_a_stage_of_a_trillion_steps_starts_at_once(spec: Experiment) -> None:
    """The plan was a list built up front: 10^12 steps hung the trainer before its first step."""
    loader = make_loader(spec, StageSpec(data="joint", steps=10**12, batch_size=2), num_batches=10**12, start_batch=10)
    assert len(loader) == 10**12
    first = next(iter(loader)).pixels
    again = collect(make_loader(spec, stage(), num_batches=11))[10][0]
    assert torch.equal(first, again)  # batch 10 of the long stream is batch 10 of a short one
