"""Decoding: resampling to the spec's fps, clip cutting, bounded decoding, bad files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnipipe.data.decode import cover_crop, read_image, read_video_clips
from omnipipe.data.errors import DecodeError, PartialDecodeError
from omnipipe.data.media import ClipSampling
from omnipipe.data.encode import write_video
from omnipipe.data.shapes import moving_shapes
from odd_media import png16


def counter_video(path: Path, frames: int, fps: int) -> Path:
    """A video whose frame i has brightness 8·i, so the decoded frame index can be read back."""
    video = np.repeat((np.arange(frames, dtype=np.uint8) * 8)[:, None, None, None], 3, -1)
    return write_video(path, np.broadcast_to(video, (frames, 16, 16, 3)).copy(), fps=fps)


def frame_indices(clip: np.ndarray) -> list[int]:
    return [round(float(frame.mean()) / 8) for frame in clip]


def test_resample_and_cut_clips(tmp_path: Path) -> None:
    video = counter_video(tmp_path / "count.mp4", frames=24, fps=24)  # 1 s; at 8 fps: every third frame
    clips = read_video_clips(video, ClipSampling(fps=8, frames=3, stride=2), fit=(16, 16))
    assert [frame_indices(c) for c in clips] == [[0, 3, 6], [6, 9, 12], [12, 15, 18]]
    bounded = read_video_clips(video, ClipSampling(fps=8, frames=3, stride=2), fit=(16, 16), max_clips=2)
    assert len(bounded) == 2


def test_slow_video_repeats_frames(tmp_path: Path) -> None:
    video = counter_video(tmp_path / "slow.mp4", frames=4, fps=4)
    (clip,) = read_video_clips(video, ClipSampling(fps=8, frames=7, stride=7), fit=(16, 16))
    assert frame_indices(clip) == [0, 0, 1, 1, 2, 2, 3]


def test_frames_shrink_to_cover_fit(tmp_path: Path) -> None:
    video = write_video(tmp_path / "wide.mp4", moving_shapes(6, 48, 96, seed=0), fps=8)
    clips = read_video_clips(video, ClipSampling(fps=8, frames=3, stride=3), fit=(24, 24))
    assert [c.shape for c in clips] == [(3, 24, 48, 3), (3, 24, 48, 3)]
    assert cover_crop(clips[0][0], (20, 30)).shape == (20, 30, 3)


def test_short_video_is_a_decode_error(tmp_path: Path) -> None:
    video = counter_video(tmp_path / "short.mp4", frames=6, fps=24)
    with pytest.raises(DecodeError, match="shorter than one clip: 2 frames at 8 fps, a clip needs 5"):
        read_video_clips(video, ClipSampling(fps=8, frames=5, stride=1), fit=(16, 16))


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_corrupt_video_is_a_decode_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.mp4").write_bytes(content)
    with pytest.raises(DecodeError, match="undecodable video"):
        read_video_clips(tmp_path / "bad.mp4", ClipSampling(fps=8, frames=2, stride=1), fit=(16, 16))


def test_truncated_video_is_a_decode_error(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4", moving_shapes(48, 32, 32, seed=1), fps=24).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 3])  # mdat cut, index (moov) at the end lost
    with pytest.raises(DecodeError):
        read_video_clips(tmp_path / "cut.mp4", ClipSampling(fps=8, frames=3, stride=1), fit=(16, 16))


def test_images_become_rgb_one_frame_clips(tmp_path: Path) -> None:
    Image.fromarray(np.full((40, 80), 200, np.uint8)).save(tmp_path / "gray.png")
    clip = read_image(tmp_path / "gray.png", fit=(20, 20))
    assert clip.shape == (1, 20, 40, 3) and clip.dtype == np.uint8 and int(clip.mean()) == 200
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DecodeError, match="unreadable image"):
        read_image(tmp_path / "broken.jpg", fit=(20, 20))


def test_16_bit_greyscale_and_rgb_pngs_keep_their_values(tmp_path: Path) -> None:
    """Pillow's own conversion clips 16-bit greyscale at 255 (almost all white): values must be scaled."""
    grey = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)
    rgb = np.stack([grey, grey // 2, 65535 - grey], -1)
    (tmp_path / "grey.png").write_bytes(png16(grey))
    (tmp_path / "rgb.png").write_bytes(png16(rgb))
    read_grey = read_image(tmp_path / "grey.png", fit=(32, 32))[0].astype(np.float64)
    read_rgb = read_image(tmp_path / "rgb.png", fit=(32, 32))[0].astype(np.float64)
    assert read_grey.shape == read_rgb.shape == (32, 32, 3)
    np.testing.assert_allclose(read_grey, np.repeat(grey[:, :, None] / 257, 3, -1), atol=0.5)
    np.testing.assert_allclose(read_rgb, rgb / 257, atol=1)  # Pillow keeps the high byte of 48-bit RGB


def test_video_damaged_in_the_middle_keeps_its_first_clips(tmp_path: Path) -> None:
    whole = counter_video(tmp_path / "whole.mp4", frames=96, fps=24).read_bytes()
    middle = len(whole) // 2
    (tmp_path / "damaged.mp4").write_bytes(whole[: middle - 200] + bytes(400) + whole[middle + 200 :])
    sampling = ClipSampling(fps=8, frames=3, stride=3)
    with pytest.raises(PartialDecodeError, match=r"damaged after \d+ frames \(\d+ clips kept\)") as caught:
        read_video_clips(tmp_path / "damaged.mp4", sampling, fit=(16, 16))
    intact = read_video_clips(tmp_path / "whole.mp4", sampling, fit=(16, 16))
    kept = caught.value.clips
    assert 1 <= len(kept) < len(intact)
    assert [frame_indices(c) for c in kept] == [frame_indices(c) for c in intact[: len(kept)]]
