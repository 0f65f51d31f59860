import numpy as np
from PIL import Image

from gcahng.viz.grid import BORDER, CAPTION, GAP, MATCH, MISMATCH, QUERY, UNKNOWN, draw_grid, query_tile, result_tile


def _image(path, color, size=(50, 30)):
    Image.new("RGB", size, color).save(path)
    return str(path)


def _frame_color(canvas, row, column, thumb):
    """Colour of the top-left frame pixel of tile (row, column): computed from the layout by hand."""
    x = GAP + column * (thumb + 2 * BORDER + GAP)
    y = GAP + row * (thumb + 2 * BORDER + CAPTION + GAP)
    return canvas.getpixel((x + 1, y + 1))


def test_grid_layout_frames_and_thumbnails(tmp_path):
    thumb = 40
    a = _image(tmp_path / "a.png", (255, 255, 0))
    b = _image(tmp_path / "b.png", (0, 0, 0), size=(10, 80))
    rows = [
        [query_tile(a, "x"), result_tile(a, 1.0, "x", "x"), result_tile(b, 0.5, "y", "x")],
        [query_tile(b, None), result_tile(b, 0.9, "y", None)],
    ]
    canvas, unreadable = draw_grid(rows, thumb_size=thumb)
    assert unreadable == []
    assert canvas.size == (GAP + 3 * (thumb + 2 * BORDER + GAP), GAP + 2 * (thumb + 2 * BORDER + CAPTION + GAP))
    assert _frame_color(canvas, 0, 0, thumb) == QUERY
    assert _frame_color(canvas, 0, 1, thumb) == MATCH
    assert _frame_color(canvas, 0, 2, thumb) == MISMATCH
    assert _frame_color(canvas, 1, 1, thumb) == UNKNOWN
    assert _frame_color(canvas, 1, 2, thumb) == (255, 255, 255)  # no third tile in row 2
    # the yellow image fills the centre of its thumbnail, the tall black one is scaled to fit
    center = GAP + BORDER + thumb // 2
    assert canvas.getpixel((center, center)) == (255, 255, 0)
    pixels = np.asarray(canvas)
    y0 = GAP + thumb + 2 * BORDER + CAPTION + GAP + BORDER
    black_rows = np.flatnonzero((pixels[y0 : y0 + thumb, GAP + BORDER : GAP + BORDER + thumb] == 0).all(-1).any(1))
    assert len(black_rows) == thumb  # the 10x80 image is scaled to the full thumbnail height


def test_unreadable_image_is_reported_and_drawn_empty(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    canvas, unreadable = draw_grid([[query_tile(_image(tmp_path / "q.png", (9, 9, 9)), None),
                                     result_tile(str(bad), 0.1, None, None)]], thumb_size=32)
    assert unreadable == [str(bad)]
    assert canvas.size[0] == GAP + 2 * (32 + 2 * BORDER + GAP)
