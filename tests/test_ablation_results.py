"""The result files of an ablation: table format, statistics (ddof=1), best cell, CSV, JSON, chart."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from PIL import Image

from gcahng.ablation import (
    Cell,
    CellSummary,
    SeedResult,
    markdown_table,
    plot_results,
    results_csv,
    results_dict,
    results_markdown,
    save_results_plot,
)

KEYS = ["generator", "node_to_node"]


def _summary(generator: str, layer: str, recalls: list[float], maps: list[float]) -> CellSummary:
    cell = Cell({"generator": generator, "node_to_node": layer}, f"generator={generator},node_to_node={layer}")
    runs = tuple(SeedResult(seed, f"runs/{cell.slug}/seed{seed}", {"recall@1": r, "map@r": m, "num_queries": 10})
                 for seed, (r, m) in enumerate(zip(recalls, maps, strict=False)))
    return CellSummary(cell, runs)


@pytest.fixture()
def summaries() -> list[CellSummary]:
    return [
        _summary("none", "attention", [0.90, 0.92, 0.94], [0.40, 0.42, 0.47]),
        # highest Recall@1 but not the highest MAP@R: MAP@R decides the best cell
        _summary("gca", "mean", [0.99, 0.97, 0.98], [0.45, 0.43, 0.44]),
        _summary("gca", "attention", [0.95, 0.93, 0.94], [0.50, 0.48, 0.46]),
    ]


def test_statistics_are_the_mean_and_sample_standard_deviation(summaries: list[CellSummary]) -> None:
    for s in summaries:
        for metric in ("recall@1", "map@r"):
            values = np.array([r.metrics[metric] for r in s.runs])
            assert s.mean(metric) == pytest.approx(values.mean())
            assert s.std(metric) == pytest.approx(values.std(ddof=1))
    assert _summary("gca", "mean", [0.5], [0.25]).std("map@r") is None


def test_markdown_table_format(summaries: list[CellSummary]) -> None:
    assert markdown_table(summaries, KEYS) == (
        "| generator | node_to_node | Recall@1 (%) | MAP@R (%) | seeds |\n"
        "|---|---|---:|---:|---:|\n"
        "| none | attention | 92.0 ± 2.0 | 43.0 ± 3.6 | 3 |\n"
        "| gca | mean | 98.0 ± 1.0 | 44.0 ± 1.0 | 3 |\n"
        "| **gca** | **attention** | **94.0 ± 1.0** | **48.0 ± 2.0** | **3** |\n"
    )


def test_one_seed_prints_a_dash_for_the_spread_and_ties_are_all_bold() -> None:
    table = markdown_table([_summary("none", "mean", [0.5], [0.3]), _summary("gca", "mean", [0.6], [0.3])], KEYS)
    assert table.splitlines()[2:] == ["| **none** | **mean** | **50.0 ± –** | **30.0 ± –** | **1** |",
                                      "| **gca** | **mean** | **60.0 ± –** | **30.0 ± –** | **1** |"]


def test_results_markdown_quotes_the_command_and_says_what_the_numbers_are(summaries: list[CellSummary]) -> None:
    command = "gcahng ablate --grid generator=none,gca --seeds 3 --out abl"
    text = results_markdown(summaries, KEYS, command=command, dataset="digits")
    lines = text.splitlines()
    assert lines[0] == "# Ablation on digits"
    assert lines[2:5] == ["```", command, "```"]
    assert "sample standard deviation (ddof=1) over 3 seed(s)" in text
    assert "best cell by mean MAP@R" in text
    assert text.endswith(markdown_table(summaries, KEYS))


def test_csv_has_one_row_per_cell_with_fractions(summaries: list[CellSummary]) -> None:
    rows = list(csv.DictReader(io.StringIO(results_csv(summaries, KEYS))))
    assert [(r["generator"], r["node_to_node"], r["best"]) for r in rows] == [
        ("none", "attention", "false"), ("gca", "mean", "false"), ("gca", "attention", "true")]
    for row, s in zip(rows, summaries, strict=False):
        assert float(row["map@r_mean"]) == s.mean("map@r") and float(row["recall@1_std"]) == s.std("recall@1")
        assert row["seeds"] == "3"
    single = list(csv.DictReader(io.StringIO(results_csv([_summary("gca", "mean", [0.5], [0.3])], KEYS))))
    assert single[0]["map@r_std"] == ""


def test_json_holds_every_seed(summaries: list[CellSummary]) -> None:
    data = json.loads(json.dumps(results_dict(summaries, KEYS, command="c", dataset="digits")))
    assert data["keys"] == KEYS and data["best_metric"] == "map@r" and data["command"] == "c"
    cell = data["cells"][0]
    assert cell["values"] == {"generator": "none", "node_to_node": "attention"}
    assert cell["map@r"]["per_seed"] == [0.40, 0.42, 0.47]
    assert [r["seed"] for r in cell["runs"]] == [0, 1, 2]
    assert cell["runs"][1]["folder"] == "runs/generator=none,node_to_node=attention/seed1"
    assert [c["best"] for c in data["cells"]] == [False, False, True]


def test_chart_has_bars_with_error_bars_a_title_and_labelled_axes(summaries: list[CellSummary],
                                                                   tmp_path: Path) -> None:
    fig = plot_results(summaries, KEYS, dataset="digits")
    ax = fig.axes[0]
    assert ax.get_title() == "Ablation on digits: mean ± std over 3 seed(s)"
    assert ax.get_xlabel() == "generator / node_to_node" and ax.get_ylabel() == "test metric (%)"
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted(round(100 * s.mean(m), 6) for s in summaries for m in ("recall@1", "map@r"))
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none\nattention", "gca\nmean", "gca\nattention"]
    assert [t.get_fontweight() for t in ax.get_xticklabels()] == ["normal", "normal", "bold"]
    save_results_plot(summaries, KEYS, tmp_path / "results.png", dataset="digits")
    with Image.open(tmp_path / "results.png") as image:
        assert image.format == "PNG" and image.width > 400
