"""load_rgb: every image mode becomes 8-bit RGB; bombs, AppleDouble and broken files are refused."""
from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import bomb_jpeg_bytes, bomb_png_bytes, jpeg_bytes
from PIL import Image

from gcahng.data import MAX_IMAGE_PIXELS, UnreadableImageError, load_rgb
from gcahng.data.images import image_header


def _rgb(path) -> np.ndarray:
    image = load_rgb(path)
    assert image.mode == "RGB"
    return np.asarray(image)


def test_grey_and_one_bit_are_replicated(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    assert np.array_equal(_rgb(tmp_path / "g.png"), np.repeat(grey[..., None], 3, axis=2))
    bits = np.zeros((6, 8), dtype=bool)
    bits[:, :4] = True
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    out = _rgb(tmp_path / "b.png")
    assert out[:, :4].min() == 255 and out[:, 4:].max() == 0


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)  # pure red ink
    out = _rgb(tmp_path / "c.jpg").astype(int)
    assert out.shape == (8, 16, 3)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60 and out[..., 2].mean() < 60


def test_transparency_goes_onto_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = _rgb(tmp_path / "a.png")
    assert (out[:2] == [200, 0, 0]).all() and (out[2:] == 255).all()
    Image.fromarray(rgba, "RGBA").convert("LA").save(tmp_path / "la.png")
    assert (_rgb(tmp_path / "la.png")[2:] == 255).all()
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.save(tmp_path / "p.png", transparency=0)  # index 0 (black) is transparent
    out = _rgb(tmp_path / "p.png")
    assert (out[0, 0] == 255).all() and (out[1, 1] == [10, 20, 30]).all()


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    out = _rgb(tmp_path / "16.png")
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (out[..., 0] == out[..., 1]).all()


def test_rgb_and_palette_without_transparency(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    assert np.array_equal(_rgb(tmp_path / "rgb.png"), pixels)
    Image.fromarray(pixels).convert("P").save(tmp_path / "p.gif")
    assert _rgb(tmp_path / "p.gif").shape == (5, 7, 3)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    Image.new("1", (side, side)).save(tmp_path / "bomb.png")
    with pytest.raises(UnreadableImageError, match="decompression bomb"):
        load_rgb(tmp_path / "bomb.png")
    Image.new("RGB", (30, 30)).save(tmp_path / "ok.png")
    with pytest.raises(UnreadableImageError, match="exceeds the limit of 800"):
        load_rgb(tmp_path / "ok.png", max_pixels=800)


@pytest.mark.parametrize("forged", [bomb_png_bytes, bomb_jpeg_bytes])
def test_header_declaring_30000x30000_pixels_is_unreadable_not_a_pil_error(tmp_path, forged):
    # beyond twice Pillow's limit Image.open itself raises DecompressionBombError (not an OSError)
    path = tmp_path / ("bomb.png" if forged is bomb_png_bytes else "bomb.jpg")
    path.write_bytes(forged())
    for read in (load_rgb, image_header):
        with pytest.raises(UnreadableImageError, match=f"{path}: refused as a possible decompression bomb"):
            read(path)
    path.write_bytes(forged(40, 30))
    assert image_header(path)[2:] == (40, 30)


def test_apple_double_truncated_and_non_images(tmp_path):
    good = jpeg_bytes(size=(64, 48))
    (tmp_path / "._photo.jpg").write_bytes(good)  # even with valid content it is never an image
    with pytest.raises(UnreadableImageError, match="'._' metadata file"):
        load_rgb(tmp_path / "._photo.jpg")
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(UnreadableImageError, match="cut.jpg: cannot read image"):
        load_rgb(tmp_path / "cut.jpg")
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(UnreadableImageError, match="text.jpg: cannot read image"):
        load_rgb(tmp_path / "text.jpg")
    with pytest.raises(UnreadableImageError, match="missing.jpg"):
        load_rgb(tmp_path / "missing.jpg")
