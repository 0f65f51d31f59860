"""Generate "glyphs": a 200-class retrieval set of letters and symbols drawn in real fonts, in the
CUB-200-2011 layout, harder than the embedded digits and used by ``benchmarks/evidence.py``.

Each class is one character (Latin, Greek, Cyrillic, digits, symbols); each image draws it in one
of the 16 DejaVu and STIX fonts shipped inside matplotlib's wheel (regular, bold, italic, mono,
serif), rotated, scaled, moved and thickened at random, at 64 x 64 pixels. Characters that look
the same as an earlier one in DejaVu Sans (Latin ``A`` and Cyrillic ``А``, ``O`` and ``0``...) are
left out, so no two classes are drawn identically. As in CUB, classes 1-100 train and 101-200 are
the unseen test classes (the character order is shuffled with a fixed seed, so both halves mix
scripts)::

    python benchmarks/glyphs.py --out data/glyphs            # ~6,000 PNGs, ~10 s
    gcahng fit cub200 --data-root data/glyphs --config benchmarks/configs/glyphs_lite0.yaml

Pinned inputs: the fonts of matplotlib (``FONT_PACKAGE``), Pillow's FreeType rasteriser and numpy's
PCG64 generator. ``DIR/glyphs_manifest.json`` records their versions and a SHA-256 over every
file written; the same versions give the same hash (checked by ``tests/test_benchmarks_glyphs.py``).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, features

FONT_PACKAGE = "matplotlib"
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
)
CANDIDATES = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    "ΓΔΘΛΞΠΣΦΨΩαβγδεζηθικλμνξπρστυφχψω"
    "БГДЖЗИЙЛПФЦЧШЩЪЫЬЭЮЯбвгджзийклмнптфцчшщъыьэюя"
    "&@#%?!§¶$£€¥+×÷=≠≈∞√∑∫∂∇<>{}[]()/\\|~^*"
    "©®°±µ¿¡«»‰†‡•←→↑↓↔⇒⇔∀∃∈∉∩∪⊂⊃⊕⊗≤≥∝∠∧∨¬♠♣♥♦★☆☺♪"
)
CLASSES = 200
IMAGES_PER_CLASS = 30
SIZE = 64
SEED = 20261201
MANIFEST = "glyphs_manifest.json"


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def _font_file(font_path: Path):
    """matplotlib's FreeType view of one font file, opened once."""
    from matplotlib.ft2font import FT2Font

    return FT2Font(str(font_path))


def _has_glyph(font_path: Path, char: str) -> bool:
    """Whether the font maps ``char`` to a glyph of its own (not the missing-glyph box)."""
    return _font_file(font_path).get_char_index(ord(char)) != 0


def _render(char: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """``char`` centred on a white ``SIZE`` x ``SIZE`` greyscale canvas (black ink)."""
    canvas = Image.new("L", (SIZE * 2, SIZE * 2), 0)
    ImageDraw.Draw(canvas).text((SIZE, SIZE), char, fill=255, font=font, anchor="mm")
    return canvas


def _reference_masks(font_path: Path) -> dict[str, np.ndarray]:
    """Every candidate drawn in DejaVu Sans, cropped to its box, padded square, at 16 x 16 (for duplicates)."""
    font = ImageFont.truetype(str(font_path), 48)
    out = {}
    for char in dict.fromkeys(CANDIDATES):
        if not _has_glyph(font_path, char):
            continue
        ink = _render(char, font)
        ink = ink.crop(ink.getbbox())
        side = max(ink.size)
        square = Image.new("L", (side, side), 0)
        square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
        out[char] = np.asarray(square.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    return out


def choose_characters(font_dir: Path) -> list[str]:
    """``CLASSES`` characters in candidate order, each unlike every earlier one, then shuffled (fixed seed)."""
    masks = _reference_masks(font_dir / FONTS[0])
    kept: list[str] = []
    for char, mask in masks.items():
        if all(np.abs(mask - masks[other]).mean() > 0.06 for other in kept):
            kept.append(char)
    if len(kept) < CLASSES:
        raise SystemExit(f"only {len(kept)} distinct characters among the candidates; {CLASSES} are needed")
    order = np.random.default_rng(SEED).permutation(len(kept[:CLASSES]))
    return [kept[i] for i in order]


def _draw(char: str, font_path: Path, rng: np.random.Generator) -> Image.Image:
    """One image of ``char``: random size, rotation (±15 degrees), offset, stroke and grey levels."""
    font = ImageFont.truetype(str(font_path), int(rng.integers(40, 49)))
    ink = _render(char, font).rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        ink = ink.filter(ImageFilter.MaxFilter(3))
    box = ink.getbbox() or (0, 0, 2 * SIZE, 2 * SIZE)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    dx, dy = rng.uniform(-6, 6, size=2)
    left, top = int(round(cx - SIZE / 2 + dx)), int(round(cy - SIZE / 2 + dy))
    ink = ink.crop((left, top, left + SIZE, top + SIZE))
    paper, pen = int(rng.integers(200, 256)), int(rng.integers(0, 60))
    background = Image.new("L", ink.size, paper)
    return ImageChops.composite(Image.new("L", ink.size, pen), background, ink)


def generate(out: Path, images_per_class: int = IMAGES_PER_CLASS) -> dict:
    """Write the dataset into ``out`` (which must not hold one already); returns the manifest."""
    font_dir = _font_dir()
    base = out / "CUB_200_2011"
    if base.exists():
        raise SystemExit(f"{base} exists; remove it or choose another --out")
    characters = choose_characters(font_dir)
    rng = np.random.default_rng(SEED)
    images, labels, classes = [], [], []
    for class_id, char in enumerate(characters, start=1):
        folder = f"{class_id:03d}.U{ord(char):04X}"
        (base / "images" / folder).mkdir(parents=True)
        classes.append(f"{class_id} {folder}")
        covering = [font_dir / name for name in FONTS if _has_glyph(font_dir / name, char)]
        for k in range(images_per_class):
            image = _draw(char, covering[int(rng.integers(len(covering)))], rng)
            rel = f"{folder}/{k:02d}.png"
            image.save(base / "images" / rel, optimize=False)
            images.append(rel)
            labels.append(class_id)
    lines = {
        "classes.txt": classes,
        "images.txt": [f"{i} {rel}" for i, rel in enumerate(images, start=1)],
        "image_class_labels.txt": [f"{i} {c}" for i, c in enumerate(labels, start=1)],
    }
    for name, rows in lines.items():
        (base / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    digest = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
    manifest = {
        "classes": len(characters),
        "images": len(images),
        "characters": "".join(characters),
        "sha256": digest.hexdigest(),
        "versions": {
            FONT_PACKAGE: metadata.version(FONT_PACKAGE),
            "pillow": metadata.version("pillow"),
            "freetype": features.version("freetype2"),
            "numpy": np.__version__,
        },
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="data root to write CUB_200_2011/ into")
    parser.add_argument("--images-per-class", type=int, default=IMAGES_PER_CLASS)
    args = parser.parse_args()
    manifest = generate(args.out, args.images_per_class)
    print(f"{manifest['images']} images of {manifest['classes']} characters; sha256 {manifest['sha256']}")


if __name__ == "__main__":
    main()
