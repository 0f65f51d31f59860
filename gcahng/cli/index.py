"""``gcahng index``: embed a gallery with a trained model and write a searchable index."""
from __future__ import annotations

from pathlib import Path

import click

SKIPPED_FILE = "skipped.txt"


@click.command("index")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", required=False)
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of gallery images (searched recursively; class = first sub-folder, if any).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="Root folder of DATASET (not needed for 'digits').")
@click.option("--split", default="test", show_default=True, help="Split of DATASET to index.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the index into.")
@click.option("--index-type", type=click.Choice(["flat", "hnsw", "ivf"]), default="flat", show_default=True,
              help="flat: exact search; hnsw/ivf: approximate, for galleries of millions.")
@click.option("--nprobe", type=click.IntRange(min=1),
              help="ivf: lists searched per query (default: nlist/16, at least 8).")
@click.option("--ef-search", type=click.IntRange(min=1), help="hnsw: search breadth (default 128).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Processes decoding images.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
def index_command(
    checkpoint: Path,
    dataset: str | None,
    images: Path | None,
    data_root: Path | None,
    split: str,
    out: Path,
    index_type: str,
    nprobe: int | None,
    ef_search: int | None,
    batch_size: int,
    workers: int,
    device: str,
) -> None:
    """Embed a gallery (--images DIR, or DATASET --split SPLIT) with CHECKPOINT and index it into --out."""
    from gcahng.errors import InputError
    from gcahng.retrieval import Index, ModelRecord, embed_dataset, embed_files, load
    from gcahng.retrieval.files import folder_labels, list_images
    from gcahng.retrieval.gallery import skipped_summary

    if (images is None) == (dataset is None):
        raise InputError("give exactly one gallery: --images DIR, or a DATASET name (with --data-root)")
    params = {key: value for key, value in (("nprobe", nprobe), ("ef_search", ef_search)) if value is not None}
    embedder = load(checkpoint, device=device)
    if images is not None:
        paths = list_images(images)
        labels = folder_labels(paths, images)
        embedded = embed_files(embedder, paths, batch_size=batch_size, workers=workers, desc="indexing")
        names = [str(p) for p in paths]
        source = {"images": str(images.expanduser().resolve())}
    else:
        from gcahng.data.registry import create_dataset

        data = create_dataset(dataset, data_root, split)
        embedded = embed_dataset(embedder, data, batch_size=batch_size, workers=workers, desc="indexing")
        names = list(data.paths)
        labels = [data.class_names[k] for k in data.labels]
        source = {"dataset": dataset, "split": split,
                  "data_root": None if data_root is None else str(data_root.expanduser().resolve())}
    if embedded.skipped:
        click.echo(skipped_summary(embedded.skipped), err=True)
    if not embedded.kept:
        raise InputError("no gallery image could be read; nothing to index")
    index = Index.build(
        embedded.embeddings,
        [names[i] for i in embedded.kept],
        None if labels is None else [labels[i] for i in embedded.kept],
        ModelRecord(str(embedder.checkpoint), embedder.fingerprint, embedder.spec.to_dict(), "checkpoint"),
        index_type=index_type,
        params=params,
        source={**source, "skipped": len(embedded.skipped)},
    )
    index.save(out)
    skipped_file = out / SKIPPED_FILE
    if embedded.skipped:
        skipped_file.write_text("".join(f"{path}\t{reason}\n" for path, reason in embedded.skipped))
    else:
        skipped_file.unlink(missing_ok=True)
    classes = "" if index.labels is None else f", {len(set(index.labels))} classes"
    click.echo(f"indexed {len(index)} images{classes} ({index.dim}-d, {index_type}) into {out}")
    if embedded.skipped:
        click.echo(f"skipped {len(embedded.skipped)} unreadable image(s), listed in {skipped_file}")
    if index.recall is not None:
        click.echo(f"recall@10 against exact search: {index.recall:.4f} "
                   f"(on {min(1000, len(index))} gallery images as queries; params {index.params})")
