"""benchmarks/evidence.py runs `gcahng ablate` and writes the evidence doc, end to end on tiny settings."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _evidence_module():
    spec = importlib.util.spec_from_file_location("evidence", ROOT / "benchmarks" / "evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evidence_runs_the_grid_and_writes_tables_with_their_command(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    evidence = _evidence_module()
    monkeypatch.setattr(evidence, "GRID", ["--grid", "generator=none,gca", "--grid", "metric_loss=npair"])
    doc = tmp_path / "evidence.md"
    evidence.main(["--out", str(tmp_path / "runs"), "--seeds", "2", "--doc", str(doc), "--glyph-images", "4", "--",
                   "--epochs", "1", "--set", "embedding_dim=16", "--set", "image_size=16", "--set", "resize_size=16",
                   "--set", "class_augmentation=none", "--set", "device=cpu", "--set", "workers=0"])
    text = doc.read_text()
    assert "gcahng ablate digits --config benchmarks/configs/digits_evidence.yaml --grid generator=none,gca" in text
    rows = [line for line in text.splitlines() if line.startswith("| npair |")]
    # per regime (scratch, then pretrained on the generated glyphs): none and gca in the table, gca in the
    # paired differences
    assert len(rows) == 6
    assert rows[2].endswith("/2 |") and rows[5].endswith("/2 |")  # paired over both seeds
    assert "gcahng ablate cub200 --set data_root=" in text and "benchmarks/configs/glyphs_lite0.yaml" in text
    assert "SHA-256" in text and "Not run" not in text


def test_regenerating_the_doc_keeps_the_hand_written_findings(tmp_path: Path) -> None:
    evidence = _evidence_module()
    doc = tmp_path / "evidence.md"
    doc.write_text(f"# old tables\n\n{evidence.FINDINGS}\n\n## Findings\n\ngca helped in 2 of 3 seeds.\n")
    evidence.write_doc(tmp_path / "nothing run", {}, doc)
    text = doc.read_text()
    assert "# old tables" not in text and "Not run yet" in text
    assert text.endswith(f"{evidence.FINDINGS}\n\n## Findings\n\ngca helped in 2 of 3 seeds.\n")
