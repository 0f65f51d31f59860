"""``gcahng ablate``: train a grid of config values over seeds and tabulate mean ± std."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import click


def _command_line(dataset: str | None, grids: tuple[str, ...], seeds: int, seed_offset: int, epochs: int | None,
                  config_file: str | None, assignments: tuple[str, ...], plugins: tuple[str, ...], out: str,
                  report_md: str | None) -> str:
    """The command as it would be typed again (options that change results only, in a fixed order)."""
    args = ["gcahng", "ablate", *([dataset] if dataset else [])]
    args += [a for grid in grids for a in ("--grid", grid)] + ["--seeds", str(seeds)]
    args += (["--seed-offset", str(seed_offset)] if seed_offset else []) + (["--epochs", str(epochs)] if epochs else [])
    args += (["--config", config_file] if config_file else []) + [a for s in assignments for a in ("--set", s)]
    args += [a for p in plugins for a in ("--plugin", p)] + ["--out", out]
    return shlex.join(args + (["--report-md", report_md] if report_md else []))


@click.command("ablate")
@click.argument("dataset", required=False)
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,...",
              help="Values of one config key to try, e.g. --grid generator=none,hdml,gca, or of several keys set "
                   "together, e.g. --grid '[generator,node_to_node]=[hdml,none],[gca,mean]'. Repeatable: the cells "
                   "are the Cartesian product of the --grid options (the first varies slowest).")
@click.option("--seeds", type=click.IntRange(min=1), required=True, help="N: seeds per cell (0..N-1).")
@click.option("--seed-offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Use the seeds OFFSET..OFFSET+N-1 instead.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs of every run (default: the config's).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML config every cell starts from (default: the preset of DATASET).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a config key in every cell, e.g. --set device=cuda. Repeatable.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import MODULE to register components the grid names. Repeatable.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Output folder: runs/<cell>/seed<k>/ and results.md|csv|json|png. Re-run to continue.")
@click.option("--report-md", type=click.Path(dir_okay=False),
              help="Also copy results.md to this file (e.g. docs/ablation_digits.md).")
@click.option("--dry-run", is_flag=True, help="List the runs (to train, resume or skip) and train nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bars (summary lines only).")
def ablate(dataset: str | None, grids: tuple[str, ...], seeds: int, seed_offset: int, epochs: int | None,
           config_file: str | None, assignments: tuple[str, ...], plugins: tuple[str, ...], out: str,
           report_md: str | None, dry_run: bool, no_progress: bool) -> None:
    """Train every cell of the --grid on DATASET (default: digits) with --seeds seeds each and
    write a table of Recall@1 and MAP@R (mean ± sample std over seeds, best MAP@R in bold).

    Runs are sequential; re-running the same command after an interruption skips the finished
    runs and resumes the interrupted one. Every cell's config is checked before training starts.
    """
    from gcahng.ablation import build_plan, describe_runs, parse_grid, run_ablation
    from gcahng.cli.run_config import start_config
    from gcahng.config import parse_assignments
    from gcahng.errors import ConfigError
    from gcahng.locking import folder_lock

    axes = parse_grid(grids)
    overrides = parse_assignments(assignments)
    if epochs is not None:
        overrides["epochs"] = epochs
    if dataset is not None:
        overrides["dataset"] = dataset
    if "seed" in overrides:
        raise ConfigError("--set seed: the seeds come from --seeds and --seed-offset")
    both = sorted({key for axis in axes for key in axis.keys} & set(overrides))
    if both:
        raise ConfigError(f"{', '.join(both)} given both in --grid and as a fixed value (DATASET, --epochs or --set); "
                          "keep one")
    base = start_config(dataset, config_file, overrides, plugins, click.echo)
    plan = build_plan(base, axes, range(seed_offset, seed_offset + seeds))
    if dry_run:
        click.echo(f"{len(plan.cells)} cell(s) x {len(plan.seeds)} seed(s); nothing is trained (--dry-run):")
        click.echo("\n".join(describe_runs(plan, out)))
        return
    command = _command_line(dataset, grids, seeds, seed_offset, epochs, config_file, assignments, plugins, out,
                            report_md)
    try:
        with folder_lock(out):
            run_ablation(plan, out, command=command, progress=not no_progress, log=click.echo)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; run the same command again to continue ({out}: finished runs are skipped, "
                   "the interrupted one resumes)", err=True)
        raise click.exceptions.Exit(130) from None
    results = Path(out) / "results.md"
    if report_md:
        Path(report_md).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results, report_md)
    click.echo(results.read_text())
