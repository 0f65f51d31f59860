"""Training curves from a run's ``metrics.jsonl``: one panel per loss term, one for evaluation.

Each line of ``metrics.jsonl`` is one epoch: ``{"epoch": int, "time_s": float, "loss":
{"J_m": float, ...}, "eval": {"split": "val", "recall@1": float, "map@r": float, ...}}``;
``eval`` appears only on evaluation epochs and the loss terms may be any subset.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from gcahng.errors import DataError
from gcahng.formats.metrics_log import METRICS_FILE, read_records

EVAL_KEYS = ("recall@1", "map@r")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of ``path`` (a ``metrics.jsonl`` file or the run folder holding one).

    Raises :class:`DataError` naming the file and line for a missing file, a line that is not
    a JSON object with an integer ``epoch``, or a file without records. A torn last line (a run
    still writing, or killed mid-write) is dropped with a warning, as a resumed run drops it.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / METRICS_FILE
    records = read_records(path, drop_torn_tail=True)
    if not records:
        raise DataError(f"{path} holds no epoch records")
    return records


def _series(records: Sequence[dict[str, Any]], section: str, key: str) -> tuple[list[int], list[float]]:
    points = [(r["epoch"], r[section][key]) for r in records
              if isinstance(r.get(section, {}).get(key), (int, float))]
    return [e for e, _ in points], [float(v) for _, v in points]


def plot_curves(records: Sequence[dict[str, Any]], title: str = "Training curves") -> Figure:
    """A figure with one panel per loss term (loss vs epoch) and one for evaluation metrics."""
    loss_keys = sorted({key for r in records for key in r.get("loss", {})})
    eval_keys = [key for key in EVAL_KEYS if any(key in r.get("eval", {}) for r in records)]
    panels = len(loss_keys) + (1 if eval_keys else 0)
    if panels == 0:
        raise DataError("the metrics hold neither loss terms nor evaluation results")
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    fig.suptitle(title, fontsize=14)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, key in zip(axes, loss_keys, strict=False):
        epochs, values = _series(records, "loss", key)
        ax.plot(epochs, values, marker="o" if len(epochs) < 30 else None, markersize=3, color="tab:blue")
        ax.set_title(f"loss {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    if eval_keys:
        ax = axes[len(loss_keys)]
        splits = sorted({str(r["eval"].get("split", "eval")) for r in records if "eval" in r})
        for key, color in zip(eval_keys, ("tab:green", "tab:purple"), strict=False):
            epochs, values = _series(records, "eval", key)
            scale = 100.0 if max(values, default=0.0) <= 1.0 else 1.0  # fractions shown as percent
            ax.plot(epochs, [scale * v for v in values], marker="o", markersize=3, color=color, label=key)
        ax.set_title(f"evaluation ({', '.join(splits)})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("%")
        ax.legend()
        ax.grid(alpha=0.3)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig
