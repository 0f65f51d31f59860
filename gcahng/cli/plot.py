"""``gcahng plot``: t-SNE maps of the embedding space and training curves, as PNG files."""
from __future__ import annotations

from pathlib import Path

import click


@click.group("plot")
def plot_group() -> None:
    """Draw pictures of a trained model or a training run."""


@plot_group.command("tsne")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="Root folder of DATASET (not needed for 'digits').")
@click.option("--split", default="test", show_default=True, help="Split whose embeddings are mapped.")
@click.option("--classes", "num_classes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Map the first N classes of the split.")
@click.option("--per-class", type=click.IntRange(min=1), help="At most this many images per class (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="t-SNE random seed.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Picture to write (.png, .pdf, .svg, ...).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def tsne_command(
    checkpoint: Path,
    dataset: str,
    data_root: Path | None,
    split: str,
    num_classes: int,
    per_class: int | None,
    seed: int,
    out: Path,
    batch_size: int,
    workers: int,
    device: str,
    force: bool,
) -> None:
    """2-D t-SNE of CHECKPOINT's embeddings of DATASET's test images, one colour and marker per class."""
    import numpy as np

    from gcahng.data.registry import create_dataset
    from gcahng.errors import InputError
    from gcahng.retrieval import embed_dataset, load
    from gcahng.retrieval.gallery import skipped_summary
    from gcahng.viz.output import check_figure_target, save_figure
    from gcahng.viz.tsne import plot_tsne, tsne_2d

    out = check_figure_target(out, force=force)
    embedder = load(checkpoint, device=device)
    data = create_dataset(dataset, data_root, split)
    chosen = np.unique(data.labels)[:num_classes]
    indices = np.concatenate([np.flatnonzero(data.labels == k)[:per_class] for k in chosen])
    embedded = embed_dataset(embedder, data, indices, batch_size=batch_size, workers=workers)
    if embedded.skipped:
        click.echo(skipped_summary(embedded.skipped), err=True)
    if len(embedded.kept) < 4:
        raise InputError(f"only {len(embedded.kept)} readable images in the chosen classes; t-SNE needs 4")
    labels = data.labels[indices[embedded.kept]]
    points = tsne_2d(embedded.embeddings, seed=seed)
    names = {k: data.class_names[k] for k in chosen}
    fig = plot_tsne(points, labels, names,
                    title=f"t-SNE of {embedder.spec.backbone} embeddings, {dataset} {split}")
    save_figure(fig, out, dpi=150)
    click.echo(f"wrote {out} ({len(points)} images, {len(chosen)} classes)")


@plot_group.command("curves")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Picture to write (.png, .pdf, .svg, ...).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def curves_command(run_dir: Path, out: Path, force: bool) -> None:
    """Every loss term and Recall@1 / MAP@R over epochs, from RUN_DIR/metrics.jsonl."""
    from gcahng.viz.curves import plot_curves, read_metrics
    from gcahng.viz.output import check_figure_target, save_figure

    out = check_figure_target(out, force=force)
    records = read_metrics(run_dir)
    run = run_dir.expanduser().resolve()
    fig = plot_curves(records, title=f"Training curves: {(run if run.is_dir() else run.parent).name}")
    save_figure(fig, out, dpi=120)
    click.echo(f"wrote {out} ({len(records)} epochs)")
