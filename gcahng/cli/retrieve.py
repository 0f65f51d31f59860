"""``gcahng retrieve``: the gallery images most similar to each query image."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("retrieve")
@click.option("--query", "queries", required=True, multiple=True,
              type=click.Path(path_type=Path), help="Query image, or a folder (every image in it). Repeatable.")
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Index folder written by `gcahng index`.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Results per query.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--show", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the queries and their results into this PNG (a new file, or one an earlier --show "
                   "wrote; never a query or gallery image).")
@click.option("--thumb-size", type=click.IntRange(min=16), default=160, show_default=True,
              help="Thumbnail side in --show, pixels.")
@click.option("--model", "--checkpoint", "model", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint or exported .onnx model to embed the queries (default: the model the index "
                   "records; must be the same model). An .onnx model runs on onnxruntime, without PyTorch.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
def retrieve_command(
    queries: tuple[Path, ...],
    index_dir: Path,
    k: int,
    as_json: bool,
    show: Path | None,
    thumb_size: int,
    model: Path | None,
    device: str,
) -> None:
    """Print the k gallery images most similar to each --query, with cosine similarities."""
    from gcahng.retrieval.files import expand_queries
    from gcahng.retrieval.index import Index

    index = Index.load(index_dir)
    query_paths = [path.resolve() for path in expand_queries(queries)]
    if show is not None:
        from gcahng.retrieval.show import check_show_target

        check_show_target(show, query_paths, index.paths)  # before the model is even loaded
    embedder = index.load_embedder(model, device=device)
    results = index.search(embedder.embed(query_paths), k)
    query_labels = [index.label_of(path) for path in query_paths]

    report = []
    for path, label, hits in zip(query_paths, query_labels, results, strict=False):
        report.append({
            "query": str(path),
            "label": label,
            "results": [
                {"rank": hit.rank, "path": hit.path, "score": round(hit.score, 6), "label": hit.label,
                 "match": None if label is None or hit.label is None else hit.label == label}
                for hit in hits
            ],
        })
    if as_json:
        model_record = {"kind": embedder.kind, "path": str(embedder.path)}
        click.echo(json.dumps({"index": str(index_dir.resolve()), "model": model_record, "k": k, "queries": report},
                              indent=2))
    else:
        for entry in report:
            click.echo(f"query {entry['query']}" + (f"  [{entry['label']}]" if entry["label"] is not None else ""))
            for hit in entry["results"]:
                label = f"  [{hit['label']}]" if hit["label"] is not None else ""
                click.echo(f"{hit['rank']:>4}  {hit['score']:.4f}  {hit['path']}{label}")
    if show is not None:
        from gcahng.retrieval.show import write_show
        from gcahng.viz.grid import draw_grid, query_tile, result_tile

        rows = [
            [query_tile(entry["query"], entry["label"])]
            + [result_tile(hit["path"], hit["score"], hit["label"], entry["label"]) for hit in entry["results"]]
            for entry in report
        ]
        canvas, unreadable = draw_grid(rows, thumb_size)
        write_show(canvas, show)
        if unreadable:
            click.echo(f"warning: {len(unreadable)} gallery image(s) could not be drawn, e.g. {unreadable[0]}",
                       err=True)
        click.echo(f"wrote {show}", err=as_json)
