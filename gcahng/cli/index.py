"""``gcahng index``: embed a gallery with a trained model and write a searchable index."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("index")
@click.argument("checkpoint", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", required=False)
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of gallery images (searched recursively; class = first sub-folder, if any).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="Root folder of DATASET (not needed for 'digits').")
@click.option("--split", default="test", show_default=True, help="Split of DATASET to index.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the index into: new, empty, or (with --force) an index to replace.")
@click.option("--force", is_flag=True, help="Replace the index in --out (a folder holding other files is refused).")
@click.option("--index-type", type=click.Choice(["flat", "hnsw", "ivf"]), default="flat", show_default=True,
              help="flat: exact search; hnsw/ivf: approximate, for galleries of millions.")
@click.option("--nprobe", type=click.IntRange(min=1),
              help="ivf: lists searched per query (default: nlist/16, at least 8).")
@click.option("--ef-search", type=click.IntRange(min=1), help="hnsw: search breadth (default 128).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Processes decoding images.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path),
              help="An ONNX model from `gcahng export` to embed with (onnxruntime) instead of CHECKPOINT.")
def index_command(
    checkpoint: Path | None,
    dataset: str | None,
    images: Path | None,
    data_root: Path | None,
    split: str,
    out: Path,
    force: bool,
    index_type: str,
    nprobe: int | None,
    ef_search: int | None,
    batch_size: int,
    workers: int,
    device: str,
    model: Path | None,
) -> None:
    """Embed a gallery (--images DIR, or DATASET --split SPLIT) with CHECKPOINT (or --model M.onnx)
    and index it into --out."""
    from gcahng.errors import InputError
    from gcahng.formats.index_folder import (
        check_index_output,
        remove_leftover_temporaries,
        resolves_inside,
        write_skipped,
    )
    from gcahng.locking import folder_lock
    from gcahng.retrieval import Index, ModelRecord, embed_dataset, embed_files
    from gcahng.retrieval.files import folder_labels, scan_images
    from gcahng.retrieval.gallery import skipped_summary
    from gcahng.retrieval.index import load_model

    if model is not None:  # the positional arguments are then DATASET only
        if dataset is not None:
            raise InputError("give the model once: CHECKPOINT or --model, not both")
        dataset, checkpoint = (None if checkpoint is None else str(checkpoint)), model
    if checkpoint is None:
        raise InputError("give the model: CHECKPOINT, or --model model.onnx")

    if (images is None) == (dataset is None):
        raise InputError("give exactly one gallery: --images DIR, or a DATASET name (with --data-root)")
    params = {key: value for key, value in (("nprobe", nprobe), ("ef_search", ef_search)) if value is not None}
    check_index_output(out, force=force)  # before anything is read or written
    embedder = load_model(checkpoint, device=device)
    with folder_lock(out):
        check_index_output(out, force=force)  # again: no other writer can start now
        remove_leftover_temporaries(out)
        not_indexed: list[tuple[str, str]] = []
        if images is not None:
            scan = scan_images(images)
            paths = [p for p in scan.paths if resolves_inside(p, images)]
            not_indexed = scan.not_regular + [(str(p), f"links outside the gallery folder {images}")
                                              for p in scan.paths if not resolves_inside(p, images)]
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
        skipped = not_indexed + embedded.skipped
        if skipped:
            click.echo(skipped_summary(skipped), err=True)
        if not embedded.kept:
            raise InputError("no gallery image could be read; nothing to index")
        index = Index.build(
            embedded.embeddings,
            [names[i] for i in embedded.kept],
            None if labels is None else [labels[i] for i in embedded.kept],
            ModelRecord.of(embedder),
            index_type=index_type,
            params=params,
            source={**source, "skipped": len(skipped)},
        )
        index.save(out)
        skipped_file = write_skipped(out, skipped)
    classes = "" if index.labels is None else f", {len(set(index.labels))} classes"
    click.echo(f"indexed {len(index)} images{classes} ({index.dim}-d, {index_type}) into {out}")
    if skipped:
        click.echo(f"skipped {len(skipped)} unreadable image(s), listed in {skipped_file}")
    if index.recall is not None:
        click.echo(f"recall@10 against exact search: {index.recall:.4f} "
                   f"(on {min(1000, len(index))} gallery images as queries; params {index.params})")
