"""The retrieval picture: each query followed by its top-k results, one row per query.

Result frames are green when the result's class matches the query's, red when it does
not, grey when either label is unknown; the query's frame is blue. The caption under a
result is its cosine similarity (and its class, when known). Drawn with PIL only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

from gcahng.data.images import load_rgb
from gcahng.errors import DataError, InputError

MATCH, MISMATCH, UNKNOWN, QUERY = (40, 167, 69), (220, 38, 38), (170, 170, 170), (37, 99, 235)
BACKGROUND, TILE_BACKGROUND, TEXT = (255, 255, 255), (238, 238, 238), (20, 20, 20)
BORDER = 6      # frame width, pixels
GAP = 10        # space between tiles and around the picture, pixels
CAPTION = 34    # height of the two caption lines under a tile, pixels


@dataclass(frozen=True)
class Tile:
    """One framed thumbnail: the image file, up to two caption lines, and its frame colour."""

    path: str
    caption: str
    color: tuple[int, int, int]


def result_tile(path: str, score: float, label: str | None, query_label: str | None) -> Tile:
    """A result's tile: green/red when both labels are known, grey otherwise."""
    if label is None or query_label is None:
        color = UNKNOWN
    else:
        color = MATCH if label == query_label else MISMATCH
    caption = f"{score:.3f}" if label is None else f"{score:.3f}\n{label}"
    return Tile(path, caption, color)


def query_tile(path: str, label: str | None) -> Tile:
    return Tile(path, "query" if label is None else f"query\n{label}", QUERY)


def grid_size(rows: int, columns: int, thumb_size: int) -> tuple[int, int]:
    """(width, height) in pixels of a picture of ``rows`` x ``columns`` tiles."""
    cell_w, cell_h = thumb_size + 2 * BORDER, thumb_size + 2 * BORDER + CAPTION
    return GAP + columns * (cell_w + GAP), GAP + rows * (cell_h + GAP)


def _thumbnail(path: str, thumb_size: int) -> Image.Image | None:
    try:
        image = load_rgb(path)
    except DataError:
        return None
    return ImageOps.contain(image, (thumb_size, thumb_size))


def _fit(text: str, font: ImageFont.ImageFont, width: int, draw: ImageDraw.ImageDraw) -> str:
    """``text`` shortened with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def draw_grid(rows: Sequence[Sequence[Tile]], thumb_size: int = 160) -> tuple[Image.Image, list[str]]:
    """The picture of ``rows`` of tiles (query first) and the paths that could not be read.

    An unreadable image is drawn as an empty tile captioned "unreadable".
    """
    if not rows or thumb_size < 16:
        raise InputError(f"need at least one row and thumb_size >= 16 (got {len(rows)} rows, {thumb_size})")
    width, height = grid_size(len(rows), max(len(row) for row in rows), thumb_size)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    cell_w, cell_h = thumb_size + 2 * BORDER, thumb_size + 2 * BORDER + CAPTION
    unreadable: list[str] = []
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            x, y = GAP + c * (cell_w + GAP), GAP + r * (cell_h + GAP)
            draw.rectangle([x, y, x + cell_w - 1, y + cell_w - 1], fill=tile.color)
            draw.rectangle([x + BORDER, y + BORDER, x + BORDER + thumb_size - 1, y + BORDER + thumb_size - 1],
                           fill=TILE_BACKGROUND)
            thumb = _thumbnail(tile.path, thumb_size)
            caption = tile.caption
            if thumb is None:
                unreadable.append(tile.path)
                caption = "unreadable"
            else:
                canvas.paste(thumb, (x + BORDER + (thumb_size - thumb.width) // 2,
                                     y + BORDER + (thumb_size - thumb.height) // 2))
            for line_no, line in enumerate(caption.split("\n")[:2]):
                draw.text((x + BORDER, y + cell_w + 2 + 16 * line_no), _fit(line, font, thumb_size, draw),
                          fill=TEXT, font=font)
    return canvas, unreadable

