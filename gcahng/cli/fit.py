"""``gcahng fit``: train an embedding network with GCA-HNG."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from gcahng.choices import CLASS_AUGMENTATIONS, GENERATOR_MODES, RANDOM_WEIGHTINGS, SELECTIONS

# option name -> config key, for the options that override one config field each
_FIELD_OPTIONS = {
    "data_root": "data_root", "backbone": "backbone", "epochs": "epochs", "classes_per_batch": "classes_per_batch",
    "per_class": "per_class", "embedding_dim": "embedding_dim", "image_size": "image_size", "weights": "weights",
    "device": "device", "seed": "seed", "workers": "workers", "selection": "selection", "amp": "amp",
    "node_to_node": "node_to_node", "edge_to_node": "edge_to_node", "node_to_edge": "node_to_edge",
    "gcl_iterations": "gcl_iterations", "heads": "heads", "random_weighting": "random_weighting",
    "generator": "generator", "metric_loss": "metric_loss", "class_augmentation": "class_augmentation",
}
_RESUMABLE = {"device", "workers"}
_AUTO = "auto"


@click.command("fit")
@click.argument("dataset", required=False)
@click.option("--data-root", type=click.Path(file_okay=False), help="Root folder of DATASET (not needed for digits).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML config (default: the preset of DATASET and --backbone, see configs/).")
@click.option("--backbone", help="Embedding network: resnet50, googlenet, dino_vits16, resnet18, tiny_cnn, ...")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--classes-per-batch", type=click.IntRange(min=1), help="C: classes per batch.")
@click.option("--per-class", type=click.IntRange(min=2), help="m: images per class in a batch.")
@click.option("--embedding-dim", type=click.IntRange(min=1), help="D: embedding size.")
@click.option("--image-size", type=click.IntRange(min=1), help="Side of the square crop, in pixels.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Local backbone weights file (offline use).")
@click.option("--no-pretrained", is_flag=True, help="Start the backbone from random initialisation.")
@click.option("--device", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps.")
@click.option("--amp", is_flag=True, default=None, help="bfloat16 autocast of the networks (CUDA or CPU).")
@click.option("--workers", type=click.IntRange(min=0), help="Data-loading processes (default: 0 on CPU, else up to 8).")
@click.option("--seed", type=int)
@click.option("--class-augmentation", type=click.Choice(CLASS_AUGMENTATIONS),
              help="Count each training class seen in 4 rotations (rot90) or also mirrored (dihedral) as new "
                   "classes; for few classes of orientation-free shapes, like digits.")
@click.option("--selection", type=click.Choice(SELECTIONS),
              help="Choose best.pt on a held-out validation split, on the test split, or keep the last epoch.")
@click.option("--generator", type=click.Choice(GENERATOR_MODES),
              help="gca: the method; hdml: interpolation with lam = 1, no graph network; none: the metric loss alone.")
@click.option("--metric-loss", metavar="NAME",
              help="Metric loss, e.g. npair, proxy_anchor, multi_similarity, triplet (an unknown name lists them all).")
@click.option("--node-to-node", metavar="NAME",
              help="Node-to-node layer of GCL, e.g. attention, gat, mean, none (a plugin may add more).")
@click.option("--edge-to-node", metavar="NAME", help="Edge-to-node layer of GCL, e.g. sum, mean, none.")
@click.option("--node-to-edge", metavar="NAME", help="Node-to-edge layer of GCL, e.g. attention, mlp, none.")
@click.option("--gcl-iterations", type=click.IntRange(min=1), help="K: GCL iterations.")
@click.option("--heads", type=click.IntRange(min=1), help="H: attention heads (must divide --embedding-dim).")
@click.option("--random-weighting", type=click.Choice(RANDOM_WEIGHTINGS),
              help="CACAI mixing weights: shared (the reference: one draw per chunk pair, shared by the whole batch) "
              "or per-pair (one per anchor and negative class).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import MODULE (e.g. my_lab.layers) to register components; appended to the config's plugins. "
                   "Repeatable.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, e.g. --set alpha=4 --set plugins=[my_layers]. Repeatable.")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/DATASET_BACKBONE_TIME).")
@click.option("--resume", type=click.Path(file_okay=False),
              help="Continue the run in this folder; 'auto': continue the run in --out when it holds one, else "
                   "start it there (one command line for torchrun --max-restarts).")
@click.option("--no-progress", is_flag=True, help="No progress bars (summary lines only).")
@click.option("--baselines", is_flag=True,
              help="Also print the test metrics of the untrained network and of raw pixels (always on digits).")
def fit_command(dataset: str | None, config_file: str | None, no_pretrained: bool, plugins: tuple[str, ...],
                assignments: tuple[str, ...], out: str | None, resume: str | None, no_progress: bool, baselines: bool,
                **options: Any) -> None:
    """Train on DATASET (default: the embedded digits set) and print the test table of best.pt."""
    from gcahng.cli.run_config import start_config
    from gcahng.config import DEFAULT_DATASET, load_config, parse_assignments
    from gcahng.distributed.runtime import broadcast, process_group, restart_warning, runtime_from_env
    from gcahng.errors import ConfigError
    from gcahng.locking import folder_lock
    from gcahng.training.baselines import DEFAULT_BASELINE_DATASETS, baseline_lines, baseline_metrics
    from gcahng.training.names import check_names
    from gcahng.training.trainer import CONFIG_FILE, Trainer, check_new_run_folder

    runtime = runtime_from_env()
    echo = click.echo if runtime.is_main else _silent
    if runtime.distributed and (warning := restart_warning()):
        echo(warning)
    overrides = {_FIELD_OPTIONS[k]: v for k, v in options.items() if v is not None}
    if no_pretrained:
        overrides["pretrained"] = False
    overrides.update(parse_assignments(assignments))
    auto = resume == _AUTO
    if auto:  # the command line that started the run: its config must come out the same
        if out is None:
            raise ConfigError("--resume auto needs --out: the run folder to start, or to continue when it holds a run")
        resume = None
    if resume is not None:
        given = sorted(set(overrides) - _RESUMABLE) + (["DATASET"] if dataset else []) + (
            ["--config"] if config_file else []) + (["--out"] if out else []) + (["--plugin"] if plugins else [])
        if given:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)} "
                              "(only --device and --workers may change)")
        run_dir = Path(resume)
        if not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"--resume {resume}: no {CONFIG_FILE} there; is it a gcahng run folder?")
        cfg = load_config(run_dir / CONFIG_FILE, overrides)
        check_names(cfg)
    else:
        if dataset is None and config_file is None:
            echo(f"no DATASET given: training on the embedded {DEFAULT_DATASET!r} set "
                 "(scikit-learn's 8x8 digits; train on 0-4, test on 5-9)")
            dataset = DEFAULT_DATASET
        if dataset is not None:
            overrides["dataset"] = dataset
        cfg = start_config(dataset, config_file, overrides, plugins, echo)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(out) if out else Path("runs") / f"{cfg.dataset}_{cfg.backbone}_{stamp}"
    trainer = Trainer(cfg, run_dir, resume=resume is not None, progress=not no_progress, runtime=runtime)
    with process_group(runtime, trainer.device):
        trainer.run_dir = run_dir = broadcast(runtime, run_dir)  # rank 0's time stamp
        if auto:
            trainer.resume = broadcast(runtime, (run_dir / CONFIG_FILE).is_file() if runtime.is_main else None)
            echo(f"--resume auto: {'continuing the run in' if trainer.resume else 'starting a new run in'} {run_dir}")
        if not trainer.resume and runtime.is_main:
            check_new_run_folder(run_dir)  # before the lock adds its file; checked again under the lock
        with folder_lock(run_dir, rank=runtime.rank):
            metrics = trainer.fit()
        if runtime.is_main and (baselines or cfg.dataset in DEFAULT_BASELINE_DATASETS):
            click.echo(baseline_lines(metrics, baseline_metrics(cfg)))
    echo(f"run folder: {run_dir}")


def _silent(line: str) -> None:
    """``echo`` on the ranks other than 0."""
