"""``gcahng serve``: the retrieval web page and JSON API over an index, on onnxruntime or PyTorch."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Index folder written by `gcahng index`.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint or .onnx model (default: the one the index records).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("-k", "k", type=click.IntRange(min=1), default=12, show_default=True, help="Default results per query.")
def serve_command(index_dir: Path, model: Path | None, host: str, port: int, k: int) -> None:
    """Serve a page to search INDEX by upload or by clicking gallery images (API docs at /docs)."""
    import uvicorn

    from gcahng.serving.app import create_app

    app = create_app(index_dir, model=model, default_k=k)
    click.echo(f"serving {index_dir} on http://{host}:{port}/ (API docs: /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
