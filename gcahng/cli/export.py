"""``gcahng export``: a checkpoint's embedding network as a verified ONNX model."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="ONNX file to write.")
@click.option("--image-size", type=int, help="Crop side in pixels, 8 to 2048 (default: the checkpoint's).")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Verify on up to 8 images of this folder (default: generated images).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def export_command(checkpoint: Path, out: Path, image_size: int | None, opset: int, images_dir: Path | None,
                   force: bool) -> None:
    """Write CHECKPOINT's embedding network (with L2 normalisation) to --out as ONNX, checked against PyTorch."""
    from gcahng.serving.export import TOLERANCE, export_onnx

    report = export_onnx(checkpoint, out, image_size=image_size, opset=opset, images_dir=images_dir, force=force)
    click.echo(f"wrote {report.path} (opset {report.opset}, {report.embedding_dim}-d, {report.image_size} px); "
               f"onnxruntime vs PyTorch on {report.num_images} images: max abs diff {report.max_abs_diff:.2g} "
               f"(<= {TOLERANCE})")
