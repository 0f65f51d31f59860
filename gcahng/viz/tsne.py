"""A 2-D t-SNE map of embeddings, one colour and marker per class, with a legend."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from gcahng.errors import InputError

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def tsne_2d(embeddings: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """scikit-learn t-SNE of ``embeddings`` (N, D) to (N, 2) with cosine distances.

    The perplexity is lowered to (N - 1) / 3 for small N, as t-SNE requires perplexity < N.
    """
    from sklearn.manifold import TSNE

    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] < 4:
        raise InputError(f"t-SNE needs at least 4 embeddings of shape (N, D), got {embeddings.shape}")
    perplexity = min(perplexity, (embeddings.shape[0] - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(embeddings)


def plot_tsne(points: np.ndarray, labels: Sequence[int], class_names: dict[int, str] | None = None,
              title: str = "t-SNE of embeddings") -> Figure:
    """Scatter ``points`` (N, 2), each class with its own colour/marker pair and a legend entry.

    Colour/marker pairs are distinct for up to 60 classes.
    """
    points = np.asarray(points)
    labels = np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise InputError(f"need points (N, 2) and N labels, got {points.shape} and {labels.shape}")
    classes = np.unique(labels)
    fig = Figure(figsize=(9, 7), layout="constrained")
    ax = fig.subplots()
    colors = colormaps["tab10"].colors
    for i, cls in enumerate(classes):
        mask = labels == cls
        # (colour, marker) = (i mod 10, i mod 12): distinct for the first 60 classes
        ax.scatter(points[mask, 0], points[mask, 1], s=18, alpha=0.8,
                   color=colors[i % len(colors)], marker=MARKERS[i % len(MARKERS)],
                   label=(class_names or {}).get(int(cls), f"class {cls}"))
    ax.set_title(f"{title} ({len(points)} images, {len(classes)} classes)")
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=1.3,
              ncols=1 if len(classes) <= 25 else 2, title="class")
    return fig
