"""``gcahng eval``: score a checkpoint (ours or the authors' released files) on a dataset."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click


@click.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", required=False)
@click.option("--data-root", type=click.Path(file_okay=False), help="Root folder of DATASET (not needed for digits).")
@click.option("--split", default="test", show_default=True,
              help="Split to score: test (the dataset's protocol; query vs gallery for inshop), or val / train.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file for the metrics (default: next to CHECKPOINT, named after it, DATASET and split).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Image-decoding processes.")
def eval_command(checkpoint: Path, dataset: str | None, data_root: str | None, split: str, out: Path | None,
                 device: str, batch_size: int, workers: int) -> None:
    """Print the metric table of CHECKPOINT on DATASET (default: the dataset it was trained on)
    and write it as JSON. CHECKPOINT is a gcahng checkpoint or a released GCA-HNG model
    (full model or metric model only)."""
    from gcahng.data import ImageDataset, read_splits
    from gcahng.data.registry import DATASETS
    from gcahng.errors import InputError
    from gcahng.training.build import resolve_device
    from gcahng.training.evaluate import evaluate_split, load_for_evaluation

    if out is not None:
        _check_replaceable(out)
    model, config = load_for_evaluation(checkpoint)
    if dataset is None:
        if config is None:
            raise InputError(f"{checkpoint} is not one of our checkpoints, so it does not name its dataset; "
                             f"give DATASET ({', '.join(DATASETS.names())})")
        dataset = config["dataset"]
        data_root = data_root if data_root is not None else config.get("data_root")
    source = DATASETS.get(dataset)
    val = {}
    if split == "val":
        if config is None or config.get("selection") != "val":
            raise InputError(f"--split val is the validation split held out by a run with selection 'val'; "
                             f"{checkpoint} has none")
        val = {"val_fraction": config["val_fraction"], "val_count": config["val_count"], "val_seed": config["seed"]}
    splits = read_splits(dataset, data_root, **val)
    wanted = source.eval_splits if split == "test" else (split,)
    missing = [s for s in wanted if s not in splits]
    if missing:
        raise InputError(
            f"dataset {dataset!r} has no split {missing[0]!r}; choose from test, {', '.join(sorted(splits))}"
        )
    datasets = {s: ImageDataset(splits[s], name=dataset, split=s) for s in wanted}
    metrics = evaluate_split(model, datasets, split, dataset_name=dataset, device=resolve_device(device),
                             batch_size=batch_size, workers=workers)
    click.echo(f"{checkpoint} on {dataset} ({split}):\n{metrics}")
    out = out if out is not None else checkpoint.with_name(f"{checkpoint.stem}.{dataset}-{split}.json")
    _check_replaceable(out)
    result = {"checkpoint": str(checkpoint), "dataset": dataset, "split": split, "spec": model.spec.to_dict(),
              "metrics": metrics.to_dict()}
    from gcahng.formats.atomic import write_atomically, write_bytes

    write_atomically(out, write_bytes((json.dumps(result, indent=2) + "\n").encode()))
    click.echo(f"wrote {out}")


RESULT_KEYS = {"checkpoint", "dataset", "split", "spec", "metrics"}


def _check_replaceable(out: Path) -> None:
    """Refuse an ``out`` that exists and is not an earlier result of ``gcahng eval`` (never overwrite a user's file)."""
    from gcahng.errors import InputError
    from gcahng.user_paths import describe

    if not os.path.lexists(out):
        return
    try:
        earlier = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and RESULT_KEYS <= set(earlier)):
        raise InputError(f"--out {describe(out)} exists and is not a result of `gcahng eval`; it is not overwritten: "
                         "give another file name or remove it")
