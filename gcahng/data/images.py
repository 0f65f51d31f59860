"""The one robust image loader: any file PIL can read becomes an 8-bit, 3-channel RGB image.

Mode handling (``load_rgb``):

- ``RGB`` is returned as is; ``L``, ``1``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` go through
  PIL's ``convert("RGB")`` (grey is replicated to the three channels).
- Transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a ``transparency`` entry, ``RGBa``, ``La``)
  is composited onto a white background, so transparent pixels do not become black or the
  palette's arbitrary "transparent" colour.
- 16- and 32-bit integer grey (``I;16*``, ``I``) is scaled from 0..65535 to 0..255 (PIL's own
  conversion would clip everything above 255 to white); float grey (``F``) is clipped to 0..255.
- Multi-frame files (GIF, TIFF) give their first frame. EXIF orientation is NOT applied, as in
  torchvision's loader and the reference code, so benchmark images match theirs pixel for pixel.

An image with more than ``MAX_IMAGE_PIXELS`` pixels, or one side more than ``MAX_ASPECT_RATIO``
times the other, is refused before it is decoded (decompression-bomb guards: resizing the shorter
side of a 600,000 x 1 image to 37 pixels would make 22 M pixels of a 661-byte file), and macOS
AppleDouble files (``._name``) are never read as images.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from gcahng.errors import DataError

MAX_IMAGE_PIXELS = 89_478_485
"""Largest accepted width * height (PIL's default limit, about 9,459 x 9,459 pixels)."""
MAX_ASPECT_RATIO = 100
"""Largest accepted ratio of an image's longer side to its shorter side."""

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
"""File endings (compared lower-case) taken as images when a folder is scanned."""

_TRANSPARENT_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class UnreadableImageError(DataError):
    """An image file cannot be decoded, is too large, or is not an image at all."""


def is_hidden_file(name: str) -> bool:
    """True for dot files, including macOS ``._*`` AppleDouble files and ``.DS_Store``."""
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    """True when ``name`` looks like an image file a folder scan should take."""
    return not is_hidden_file(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@contextmanager
def _opened(path: str, max_pixels: int) -> Iterator[Image.Image]:
    """``Image.open(path)`` (header read, pixels not decoded yet); every failure, also one while
    the caller decodes inside the ``with`` block, becomes an :class:`UnreadableImageError`."""
    if os.path.basename(path).startswith("._"):
        raise UnreadableImageError(f"{path}: a macOS '._' metadata file, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise UnreadableImageError(
                        f"{path}: {width}x{height} pixels exceeds the limit of {max_pixels:,} "
                        "pixels (refused as a possible decompression bomb)"
                    )
                if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                    raise UnreadableImageError(
                        f"{path}: {width}x{height} pixels is more than {MAX_ASPECT_RATIO} times as long as it is "
                        "wide (refused: resizing its shorter side for a model would make a huge image)"
                    )
                yield image
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as err:
        raise UnreadableImageError(f"{path}: refused as a possible decompression bomb ({err})") from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as err:
        reason = str(err) or type(err).__name__
        raise UnreadableImageError(f"{path}: cannot read image ({reason})") from None


def image_header(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[str, str | None, int, int]:
    """``(mode, format, width, height)`` from the file's header, without decoding the pixels.

    Raises :class:`UnreadableImageError` as :func:`load_rgb` does (also for a header that
    declares more than ``max_pixels`` pixels).
    """
    with _opened(os.fspath(path), max_pixels) as image:
        return image.mode, image.format, image.size[0], image.size[1]


def load_rgb(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Read ``path`` and return it as an 8-bit RGB ``PIL.Image`` (see the module docstring).

    Raises :class:`UnreadableImageError` naming the file and the reason when the file is an
    AppleDouble ``._*`` file, cannot be opened or decoded (also truncated files), or has more
    than ``max_pixels`` pixels.
    """
    with _opened(os.fspath(path), max_pixels) as image:
        image.load()
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit RGB (rules in the module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64)
        if mode != "F":
            values = values / 257.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), "RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in _TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")

