"""The bar chart of an ablation: per cell, one bar per metric (mean, %) with the spread over seeds."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gcahng.ablation.grid import format_value
from gcahng.ablation.results import METRIC_TITLES, METRICS, CellSummary, best_cells


def plot_results(summaries: Sequence[CellSummary], keys: Sequence[str], *, dataset: str) -> Figure:
    """Grouped bars: x = cells (labelled by their values of ``keys``), one bar per metric,
    error bars = sample standard deviation (none with one seed); the best cell's label in bold."""
    best = best_cells(summaries)
    x = np.arange(len(summaries))
    width = 0.8 / len(METRICS)
    fig = Figure(figsize=(max(6.0, 1.1 * len(summaries) + 2.0), 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, metric in enumerate(METRICS):
        means = [100 * s.mean(metric) for s in summaries]
        stds = [100 * (s.std(metric) or 0.0) for s in summaries]
        ax.bar(x + (i - (len(METRICS) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
               label=METRIC_TITLES[metric])
    labels = ["\n".join(format_value(s.cell.values[k]) for k in keys) or s.cell.label for s in summaries]
    ax.set_xticks(x, labels, fontsize=8)
    for tick, s in zip(ax.get_xticklabels(), summaries, strict=False):
        if s.cell.slug in best:
            tick.set_fontweight("bold")
    seeds = sorted({len(s.runs) for s in summaries})
    ax.set_title(f"Ablation on {dataset}: mean ± std over {' to '.join(map(str, seeds))} seed(s)")
    ax.set_xlabel(" / ".join(keys) if keys else "cell")
    ax.set_ylabel("test metric (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def save_results_plot(summaries: Sequence[CellSummary], keys: Sequence[str], path: str | Path, *,
                      dataset: str) -> None:
    """Write :func:`plot_results` as a PNG."""
    plot_results(summaries, keys, dataset=dataset).savefig(path, dpi=120)
