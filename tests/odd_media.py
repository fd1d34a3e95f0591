"""A folder of odd input files as users have them: damaged, mislabelled, unusual formats and sizes, links.

``write_odd_media(folder)`` writes them and returns, per file name, what ``prepare`` must make of it:
``("ok", mean)`` (prepared; ``mean`` is the expected mean pixel value of its first frame, or None) or
``("skip", text)`` (skipped with a reason that contains ``text``).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import av
import numpy as np
from PIL import Image

from omnipipe.data.encode import write_video
from omnipipe.data.shapes import moving_shapes


def png16(values: np.ndarray, claimed: tuple[int, int] | None = None) -> bytes:
    """A 16-bit PNG (greyscale for (H, W), RGB for (H, W, 3)) written by hand: Pillow cannot write 48-bit RGB.

    ``claimed`` (height, width) puts other dimensions in the header than the data has (a decompression bomb).
    """
    height, width = claimed or values.shape[:2]
    colour = 0 if values.ndim == 2 else 2
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(values.shape[0]))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _image(mode_array: np.ndarray, mode: str | None = None, **save: object) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(mode_array) if mode is None else Image.fromarray(mode_array).convert(mode)
    image.save(buffer, **save)
    return buffer.getvalue()


def _audio_only_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for _ in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def _frames(count: int, value_step: int = 10) -> list[Image.Image]:
    return [Image.fromarray(np.full((32, 32, 3), number * value_step, np.uint8)) for number in range(count)]


def write_odd_media(folder: Path) -> dict[str, tuple[str, object]]:
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.full((32, 32), 100, np.uint8)
    flat = np.full((32, 32, 3), 100, np.uint8)
    png = _image(flat, format="PNG")
    jpeg = _image(moving_shapes(1, 64, 64, seed=0)[0], format="JPEG")
    mp4 = write_video(folder / "good.mp4", moving_shapes(48, 32, 32, seed=1), fps=24).read_bytes()
    gray16 = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # spans 0..65472: mean ≈ 127.5
    rgb16 = np.stack([gray16, gray16 // 2, 65535 - gray16], -1)
    rotated = Image.fromarray(np.concatenate([np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 200, np.uint8)], 1))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    float_image = np.full((32, 32), 0.5, np.float32)
    noise = _image(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8), format="PNG")
    contents: dict[str, bytes] = {
        "empty.png": b"",
        "truncated.png": noise[: len(noise) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "text.png": b"just some text, renamed\n" * 20,
        "png_named.jpg": png,
        "video_named.png": mp4,
        "image_named.mp4": png,
        "tiny_1x1.png": _image(np.full((1, 1, 3), 7, np.uint8), format="PNG"),
        "strip_40000x1.png": _image(np.full((1, 40000, 3), 9, np.uint8), format="PNG"),
        "strip_1x40000.png": _image(np.full((40000, 1, 3), 9, np.uint8), format="PNG"),
        "gray16.png": png16(gray16),
        "rgb16.png": png16(rgb16),
        "float_named.png": _image(float_image, format="TIFF"),
        "float_out_of_range.png": _image(float_image * 300, format="TIFF"),
        "int32_out_of_range.png": _image(np.full((32, 32), 70000, np.int32), format="TIFF"),
        "cmyk.jpg": _image(flat, "CMYK", format="JPEG", quality=100),
        "palette.png": _image(flat, "P", format="PNG"),
        "palette_transparent.png": _image(flat, "P", format="PNG", transparency=0),
        "rgba.png": _image(np.dstack([flat, np.full((32, 32), 128, np.uint8)]), format="PNG"),
        "grey_alpha.png": _image(np.dstack([grey, grey]), "LA", format="PNG"),
        "bilevel.png": _image(np.full((32, 32), 255, np.uint8), "1", format="PNG"),
        "bmp_named.jpg": _image(flat, format="BMP"),
        "photo.webp": _image(flat, format="WEBP", lossless=True),
        "unicode_名前.png": png,
        "bomb.png": png16(np.zeros((1, 1), np.uint16), claimed=(100000, 100000)),
        "corrupt.mp4": np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "truncated.mp4": mp4[: len(mp4) // 3],
        "corrupt_middle.mp4": mp4[: len(mp4) // 2 - 200] + bytes(400) + mp4[len(mp4) // 2 + 200 :],
        "audio_only.mp4": _audio_only_mp4(),
        "short.mp4": write_video(folder / "short.tmp.mp4", moving_shapes(3, 32, 32, seed=3), fps=24).read_bytes(),
    }
    (folder / "short.tmp.mp4").unlink()
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    rotated.save(folder / "exif_rotated.jpg", exif=exif, quality=100)
    _frames(24)[0].save(folder / "animated.gif", save_all=True, append_images=_frames(24)[1:], duration=125, loop=0)
    _frames(6)[0].save(folder / "animated.png", save_all=True, append_images=_frames(6)[1:], duration=125)
    os.symlink("loop.png", folder / "loop.png")
    os.symlink("missing.png", folder / "dangling.png")
    (folder / "folder.mp4").mkdir()
    os.mkfifo(folder / "fifo.png")
    return {
        "good.mp4": ("ok", None),
        "empty.png": ("skip", "empty file (0 bytes)"),
        "truncated.png": ("skip", "unreadable image"),
        "truncated.jpg": ("skip", "unreadable image"),
        "text.png": ("skip", "unreadable image: cannot identify image file"),
        "png_named.jpg": ("ok", 100),
        "video_named.png": ("skip", "unreadable image"),
        "image_named.mp4": ("skip", ""),
        "tiny_1x1.png": ("skip", "1×1 pixels: covering 18×18 needs a 18× upscale, more than data.max_upscale 4"),
        "strip_40000x1.png": ("skip", "1×40000 pixels: aspect ratio 4e+04:1 exceeds data.max_aspect_ratio 4"),
        "strip_1x40000.png": ("skip", "40000×1 pixels: aspect ratio 4e+04:1 exceeds data.max_aspect_ratio 4"),
        "gray16.png": ("ok", 127.5),
        "rgb16.png": ("ok", (127.5 + 63.5 + 127.5) / 3),
        "float_named.png": ("ok", 128),
        "float_out_of_range.png": ("skip", "floating-point image with values outside [0, 1]"),
        "int32_out_of_range.png": ("skip", "image with values outside 0..65535"),
        "cmyk.jpg": ("ok", 100),
        "palette.png": ("ok", None),
        "palette_transparent.png": ("ok", None),
        "rgba.png": ("ok", 100),
        "grey_alpha.png": ("ok", 100),
        "bilevel.png": ("ok", 255),
        "bmp_named.jpg": ("ok", 100),
        "photo.webp": ("ok", 100),
        "unicode_名前.png": ("ok", 100),
        "bomb.png": ("skip", "unreadable image: Image size (10000000000 pixels) exceeds limit"),
        "corrupt.mp4": ("skip", "undecodable video"),
        "truncated.mp4": ("skip", "undecodable video"),
        "corrupt_middle.mp4": ("skip", "damaged after"),  # its first clips are kept
        "audio_only.mp4": ("skip", "no video stream"),
        "short.mp4": ("skip", "shorter than one clip"),
        "exif_rotated.jpg": ("ok", 100),  # displayed upright: its black half on top (checked by the test)
        "animated.gif": ("ok", None),
        "animated.png": ("ok", 0),
        "loop.png": ("skip", "symlink loop"),
        "dangling.png": ("skip", "dangling symlink (its target missing.png does not exist)"),
        "folder.mp4": ("skip", "a folder, not a file"),
        "fifo.png": ("skip", "not a regular file (a pipe, socket or device)"),
    }
