"""The results of an ablation: per-cell means and spreads, and the files that report them.

Metrics are fractions in [0, 1] in ``results.csv`` and ``results.json`` (like every
``test_metrics.json``) and percent in ``results.md`` and the chart. The spread is the
sample standard deviation over seeds (``ddof=1``); with one seed it is undefined
(``None`` in JSON, empty in CSV, ``–`` in the table). The best cell is the one with the
highest mean MAP@R (:data:`BEST_METRIC`); cells tied with it are all marked best.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gcahng.ablation.grid import Cell, format_value

METRICS = ("recall@1", "map@r")
METRIC_TITLES = {"recall@1": "Recall@1", "map@r": "MAP@R"}
BEST_METRIC = "map@r"


@dataclass(frozen=True)
class SeedResult:
    """One finished run: its seed, folder (relative to the output folder) and test metrics."""

    seed: int
    folder: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class CellSummary:
    """A cell and its finished runs, in seed order."""

    cell: Cell
    runs: tuple[SeedResult, ...]

    def values(self, metric: str) -> list[float]:
        return [float(r.metrics[metric]) for r in self.runs]

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values(metric))

    def std(self, metric: str) -> float | None:
        """Sample standard deviation (ddof=1); ``None`` with fewer than two seeds."""
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else None


def best_cells(summaries: Sequence[CellSummary]) -> set[str]:
    """Slugs of the cells with the highest mean :data:`BEST_METRIC`."""
    top = max(s.mean(BEST_METRIC) for s in summaries)
    return {s.cell.slug for s in summaries if s.mean(BEST_METRIC) == top}


def _percent(summary: CellSummary, metric: str) -> str:
    std = summary.std(metric)
    return f"{100 * summary.mean(metric):.1f} ± {'–' if std is None else f'{100 * std:.1f}'}"


def markdown_table(summaries: Sequence[CellSummary], keys: Sequence[str]) -> str:
    """One row per cell: the varied keys, Recall@1 and MAP@R (mean ± std, %), seeds; best in bold."""
    best = best_cells(summaries)
    header = [*(keys or ["cell"]), *(f"{METRIC_TITLES[m]} (%)" for m in METRICS), "seeds"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * max(len(keys), 1) + ["---:"] * (len(METRICS) + 1)) + "|"]
    for s in summaries:
        cells = [format_value(s.cell.values[k]) for k in keys] or [s.cell.label]
        cells += [_percent(s, m) for m in METRICS] + [str(len(s.runs))]
        if s.cell.slug in best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(summaries: Sequence[CellSummary], keys: Sequence[str], *, command: str, dataset: str) -> str:
    """``results.md``: the command, what the numbers are, and :func:`markdown_table`."""
    seeds = sorted({len(s.runs) for s in summaries})
    return (
        f"# Ablation on {dataset}\n\n"
        f"```\n{command}\n```\n\n"
        f"Test-split metrics of each run's `best.pt`, in percent: mean ± sample standard deviation "
        f"(ddof=1) over {' to '.join(map(str, seeds))} seed(s) per cell (– with one seed). "
        f"**Bold**: the best cell by mean {METRIC_TITLES[BEST_METRIC]}.\n\n"
        + markdown_table(summaries, keys)
    )


def results_csv(summaries: Sequence[CellSummary], keys: Sequence[str]) -> str:
    """``results.csv``: one row per cell; the keys, then mean and std (fractions) per metric, seeds, best."""
    best = best_cells(summaries)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*keys, *(f"{m}_{stat}" for m in METRICS for stat in ("mean", "std")), "seeds", "best"])
    for s in summaries:
        stats = []
        for m in METRICS:
            std = s.std(m)
            stats += [repr(s.mean(m)), "" if std is None else repr(std)]
        writer.writerow([*(format_value(s.cell.values[k]) for k in keys), *stats, len(s.runs),
                         str(s.cell.slug in best).lower()])
    return out.getvalue()


def results_dict(summaries: Sequence[CellSummary], keys: Sequence[str], *, command: str,
                 dataset: str) -> dict[str, Any]:
    """``results.json``: the command, the keys and per cell the statistics and every seed's metrics."""
    best = best_cells(summaries)
    return {
        "command": command,
        "dataset": dataset,
        "keys": list(keys),
        "best_metric": BEST_METRIC,
        "std": "sample standard deviation over seeds (ddof=1); null with one seed",
        "cells": [
            {
                "cell": s.cell.slug,
                "values": s.cell.values,
                "best": s.cell.slug in best,
                **{m: {"mean": s.mean(m), "std": s.std(m), "per_seed": s.values(m)} for m in METRICS},
                "runs": [{"seed": r.seed, "folder": r.folder, "metrics": r.metrics} for r in s.runs],
            }
            for s in summaries
        ],
    }


def results_json(summaries: Sequence[CellSummary], keys: Sequence[str], *, command: str, dataset: str) -> str:
    return json.dumps(results_dict(summaries, keys, command=command, dataset=dataset), indent=2) + "\n"
