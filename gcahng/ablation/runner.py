"""Running an ablation plan: one run folder per (cell, seed), sequentially, resumable.

    OUT/runs/<cell-slug>/seed<k>/    a normal gcahng run folder (config.yaml, checkpoints/, ...)
    OUT/results.md|csv|json|png      written when every run has finished

Re-running the same command after an interruption skips each run whose
``test_metrics.json`` exists ("finished: skipped") and *resumes* a run that was stopped
mid-way from its ``checkpoints/last.pt`` (:class:`~gcahng.training.trainer.Trainer` with
``resume=True``; on the CPU this repeats exactly what the uninterrupted run would have
done). Before anything trains, every existing run folder's ``config.yaml`` is compared with
the run's planned config (up to ``device`` and ``workers``): a folder trained with other
settings is an error rather than a stale row in the table. A grid may thus be extended in
the same output folder: the cells already finished are reused.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gcahng.ablation.grid import AblationPlan, Run
from gcahng.ablation.plot import save_results_plot
from gcahng.ablation.results import (
    CellSummary,
    SeedResult,
    results_csv,
    results_json,
    results_markdown,
)
from gcahng.config import load_config
from gcahng.errors import ConfigError, DataError, GcahngError
from gcahng.evaluation import RetrievalMetrics
from gcahng.formats.atomic import write_atomically, write_bytes
from gcahng.training.trainer import CONFIG_FILE, TEST_METRICS_FILE, Trainer

RESULT_FILES = ("results.md", "results.csv", "results.json", "results.png")
_MAY_DIFFER = {"device", "workers"}


class TrainerLike(Protocol):
    def fit(self) -> RetrievalMetrics: ...


# (cfg, run_dir, *, resume, progress, log) -> an object with .fit(); Trainer by default
TrainerFactory = Callable[..., TrainerLike]


def run_state(run: Run, run_dir: Path) -> str:
    """``new``, ``finished`` (its test table exists) or ``interrupted``; raises :class:`ConfigError`
    when the folder holds a run of another config."""
    config_file = run_dir / CONFIG_FILE
    if not config_file.exists():
        return "new"
    saved = load_config(config_file).to_dict()
    planned = run.config.to_dict()
    changed = sorted(k for k in planned if k not in _MAY_DIFFER and saved.get(k) != planned[k])
    if changed:
        raise ConfigError(f"{run_dir} holds a run of another config ({', '.join(changed)} differ from the planned "
                          f"cell {run.cell.label}, seed {run.seed}); choose another --out or delete that folder")
    return "finished" if (run_dir / TEST_METRICS_FILE).exists() else "interrupted"


def read_test_metrics(run_dir: Path) -> dict:
    """The ``metrics`` of a finished run's ``test_metrics.json``."""
    path = run_dir / TEST_METRICS_FILE
    try:
        metrics = json.loads(path.read_text())["metrics"]
        RetrievalMetrics.from_dict(metrics)
    except (OSError, ValueError, KeyError, TypeError, GcahngError) as err:
        raise DataError(f"{path} is not a gcahng test table ({err}); delete the run folder to train it again") from None
    return metrics


def describe_runs(plan: AblationPlan, out_dir: str | Path) -> list[str]:
    """One line per run: its cell, seed, folder and whether it will train, resume or be skipped
    (the folders are checked as :func:`run_ablation` checks them)."""
    out_dir = Path(out_dir)
    action = {"new": "will train", "interrupted": "will resume", "finished": "finished: will be skipped"}
    return [f"[{index}/{len(plan.runs)}] {run.cell.label}, seed {run.seed}: "
            f"{action[run_state(run, out_dir / run.folder)]} ({out_dir / run.folder})"
            for index, run in enumerate(plan.runs, start=1)]


def run_ablation(plan: AblationPlan, out_dir: str | Path, *, command: str, progress: bool = True,
                 log: Callable[[str], None] = print, trainer: TrainerFactory | None = None) -> list[CellSummary]:
    """Train (or skip, or resume) every run of ``plan`` under ``out_dir``, write the result
    files and return the per-cell summaries in grid order. ``command`` is quoted at the top
    of ``results.md``; ``log`` receives progress lines and the trainer's own lines;
    ``trainer`` builds each run's trainer (default :class:`~gcahng.training.trainer.Trainer`)."""
    out_dir = Path(out_dir)
    make_trainer = trainer if trainer is not None else Trainer
    states = [run_state(run, out_dir / run.folder) for run in plan.runs]  # all checked before any training
    done = sum(state == "finished" for state in states)
    log(f"ablation: {len(plan.cells)} cell(s) x {len(plan.seeds)} seed(s) = {len(plan.runs)} run(s) in {out_dir}"
        + (f"; {done} already finished" if done else ""))
    results: dict[str, list[SeedResult]] = {cell.slug: [] for cell in plan.cells}
    for index, (run, state) in enumerate(zip(plan.runs, states, strict=False), start=1):
        run_dir = out_dir / run.folder
        head = f"[{index}/{len(plan.runs)}] {run.cell.label}, seed {run.seed}"
        if state == "finished":
            log(f"{head}: finished: skipped")
            metrics = read_test_metrics(run_dir)
        else:
            log(f"{head}: {'resuming the interrupted run' if state == 'interrupted' else 'training'} in {run_dir}")
            try:
                metrics = make_trainer(run.config, run_dir, resume=state == "interrupted", progress=progress,
                                       log=log).fit().to_dict()
            except GcahngError as err:
                raise type(err)(f"ablation run {run_dir} ({run.cell.label}, seed {run.seed}): {err}") from err
        results[run.cell.slug].append(SeedResult(run.seed, run.folder, metrics))
    summaries = [CellSummary(cell, tuple(results[cell.slug])) for cell in plan.cells]
    write_results(summaries, plan, out_dir, command=command)
    log(f"results: {', '.join(str(out_dir / name) for name in RESULT_FILES)}")
    return summaries


def write_results(summaries: list[CellSummary], plan: AblationPlan, out_dir: Path, *, command: str) -> None:
    """``results.md``, ``results.csv``, ``results.json`` and ``results.png`` in ``out_dir``."""
    dataset = ", ".join(sorted({run.config.dataset for run in plan.runs}))  # several when the grid varies it
    texts = {"results.md": results_markdown(summaries, plan.keys, command=command, dataset=dataset),
             "results.csv": results_csv(summaries, plan.keys),
             "results.json": results_json(summaries, plan.keys, command=command, dataset=dataset)}
    for name, text in texts.items():
        write_atomically(out_dir / name, write_bytes(text.encode()))
    save_results_plot(summaries, plan.keys, out_dir / "results.png", dataset=dataset)
