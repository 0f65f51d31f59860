"""benchmarks/glyphs.py: deterministic, 200 distinct characters, readable as CUB-200-2011."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcahng.data.sources.cub200 import read_cub200

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def glyphs():
    spec = importlib.util.spec_from_file_location("glyphs", ROOT / "benchmarks" / "glyphs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["glyphs"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["glyphs"]


def test_two_runs_write_the_same_files_and_the_cub_reader_splits_them(glyphs, tmp_path):
    first = glyphs.generate(tmp_path / "a", images_per_class=2)
    second = glyphs.generate(tmp_path / "b", images_per_class=2)
    assert first["sha256"] == second["sha256"]
    assert json.loads((tmp_path / "a" / glyphs.MANIFEST).read_text(encoding="utf-8")) == first
    assert first["classes"] == 200 and first["images"] == 400 and len(set(first["characters"])) == 200
    splits = read_cub200(tmp_path / "a")
    assert len(set(splits["train"].class_keys.tolist())) == 100 and len(set(splits["test"].class_keys.tolist())) == 100
    assert len(splits["train"].paths) == len(splits["test"].paths) == 200
    image = Image.open(splits["test"].paths[0])
    assert image.size == (glyphs.SIZE, glyphs.SIZE)
    assert np.ptp(np.asarray(image)) > 100  # ink on paper, not a blank canvas
    with pytest.raises(SystemExit, match="exists"):
        glyphs.generate(tmp_path / "a", images_per_class=2)


def test_no_two_classes_are_drawn_alike(glyphs):
    masks = glyphs._reference_masks(glyphs._font_dir() / glyphs.FONTS[0])
    chosen = glyphs.choose_characters(glyphs._font_dir())
    assert "А" not in chosen or "A" not in chosen  # Cyrillic and Latin A are one shape
    worst = min(np.abs(masks[a] - masks[b]).mean() for i, a in enumerate(chosen) for b in chosen[i + 1:])
    assert worst > 0.06
