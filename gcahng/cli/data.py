"""``gcahng data``: list, download and check datasets."""
from __future__ import annotations

import click

from gcahng.data import DATASETS
from gcahng.data.check import check_dataset
from gcahng.data.download import download_dataset


@click.group()
def data() -> None:
    """Get and check datasets (cub200, cars196, sop, inshop, folder, digits)."""


@data.command("list")
def list_datasets() -> None:
    """Show the datasets and how to get each."""
    for name in DATASETS.names():
        source = DATASETS.get(name)
        how = "bundled" if not source.needs_root else "downloadable" if source.archive else "manual download"
        click.echo(f"{name} ({how}): {source.how_to_get}")


@data.command()
@click.argument("name")
@click.option(
    "--data-root", required=True, type=click.Path(file_okay=False), help="Folder to download and extract into."
)
def download(name: str, data_root: str) -> None:
    """Download, verify (size + SHA-256), extract and validate dataset NAME."""
    records = download_dataset(name, data_root, show_progress=True, log=click.echo)
    for split, split_records in records.items():
        click.echo(f"{split}: {len(split_records.class_names):,} classes, {len(split_records.paths):,} images")


@data.command()
@click.argument("name")
@click.option("--data-root", type=click.Path(), default=None, help="The dataset's root folder (not needed for digits).")
@click.option(
    "--split-file", type=click.Path(dir_okay=False), default=None, help="folder datasets: class -> split file."
)
@click.option("--header-only", is_flag=True, help="Read image headers only (fast; misses truncated files).")
@click.option("--workers", type=int, default=None, help="Threads decoding images (default: CPU count).")
def check(name: str, data_root: str | None, split_file: str | None, header_only: bool, workers: int | None) -> None:
    """Scan dataset NAME: per-split counts and every problem found; exits 1 on errors."""
    options = {"split_file": split_file} if split_file else {}
    report = check_dataset(
        name, data_root, decode=not header_only, workers=workers,
        progress=lambda n: click.echo(f"  {n:,} images inspected", err=True), **options,
    )
    for split, (classes, images) in report.counts.items():
        click.echo(f"{split}: {classes:,} classes, {images:,} images")
    for note in report.notes:
        click.echo(f"note: {note}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    for error in report.errors:
        click.echo(f"error: {error}")
    if not report.ok:
        raise click.ClickException(f"{len(report.errors)} error(s) found in {name}")
    click.echo(f"{name}: no errors ({len(report.warnings)} warning(s))")
