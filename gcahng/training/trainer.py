"""The training loop around :class:`~gcahng.training.TrainingStep`: epochs, schedules,
warm-up, periodic evaluation, model selection, logs and crash-safe checkpoints.

A run folder holds::

    config.yaml            the exact config of the run
    metrics.jsonl          one JSON object per epoch: loss means, lr, time, evaluation
    tensorboard/           TensorBoard event files (the same numbers)
    checkpoints/last.pt    full training state after the last completed epoch
    checkpoints/best.pt    the selected model (see TrainConfig.selection)
    test_metrics.json      the final test table of best.pt

Determinism: every epoch re-seeds torch's generators and the data loader from
``(seed, epoch)`` (``(seed, epoch, rank)`` under torchrun) and the sampler draws from
``(seed, epoch)``, so a run resumed from ``last.pt`` repeats exactly what the uninterrupted
run would have done (on the CPU).

Under torchrun (a :class:`~gcahng.distributed.runtime.Runtime` with several ranks) every rank
trains its slice of each global batch with the embedding network in DDP; rank 0 alone reads
and writes the run folder (the others receive what it reads), logs and shows progress, and the
evaluation is sharded over the ranks.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gcahng.config import TrainConfig, config_from_dict, save_config
from gcahng.data import FailureLog, ImageDataset
from gcahng.distributed.context import DistContext
from gcahng.distributed.runtime import (
    SINGLE,
    Runtime,
    broadcast_buffers,
    mean_over_ranks,
    on_main,
    rank_device,
    wrap_ddp,
)
from gcahng.errors import CheckpointError, ConfigError, GcahngError
from gcahng.evaluation import RetrievalMetrics
from gcahng.formats import metrics_log
from gcahng.formats.atomic import remove_stale_temporaries, write_atomically, write_bytes
from gcahng.formats.checkpoint import atomic_save, load_training_checkpoint, training_payload
from gcahng.formats.metrics_log import METRICS_FILE
from gcahng.locking import LOCK_FILE
from gcahng.training.build import (
    TrainingParts,
    build_training_parts,
    load_datasets,
    loader_workers,
    resolve_device,
    seed_everything,
    train_loader,
)
from gcahng.training.evaluate import evaluate_split
from gcahng.training.schedule import apply_warmup
from gcahng.training.selection import Best, no_best, select
from gcahng.training.step import NonFiniteLossError
from gcahng.user_paths import describe

CONFIG_FILE = "config.yaml"
TEST_METRICS_FILE = "test_metrics.json"
LAST = Path("checkpoints") / "last.pt"
BEST = Path("checkpoints") / "best.pt"


def check_new_run_folder(run_dir: str | Path) -> None:
    """Raise :class:`ConfigError` unless a new run may start in ``run_dir``: it does not exist, or holds
    nothing but the run's lock (and the empty ``checkpoints/`` of a run killed before its config was
    written). So a new run never writes into another run or among files of the user's."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        if os.path.lexists(run_dir):
            raise ConfigError(f"--out {describe(run_dir)} exists and is not a folder")
        return
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                          "or choose another --out")
    checkpoints = run_dir / "checkpoints"
    held = sorted(p.name for p in run_dir.iterdir()
                  if p.name != LOCK_FILE and not (p == checkpoints and p.is_dir() and not any(p.iterdir())))
    if held:
        listed = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise ConfigError(f"--out {describe(run_dir)} is not empty (it holds {listed}) and is not a gcahng run; "
                          "give a new or empty folder")


class TrainingStopped(GcahngError):
    """A loss became NaN or infinite; the run stopped and its last checkpoint is intact."""


def _metric_value(metrics: RetrievalMetrics, name: str) -> float:
    return float(metrics.to_dict()[name])


class Trainer:
    """Trains one run of ``cfg`` into ``run_dir``.

    ``resume=True`` continues the run in ``run_dir`` from ``checkpoints/last.pt`` (or from
    the start when the run was killed before its first checkpoint); ``cfg`` must then be the
    run's own config, up to ``device`` and ``workers``. ``log`` receives the human-readable
    lines (default: printed above the progress bar); ``progress`` shows a tqdm bar per epoch;
    both on rank 0 of ``runtime`` only.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        *,
        resume: bool = False,
        progress: bool = True,
        log: Callable[[str], None] = tqdm.write,
        runtime: Runtime = SINGLE,
    ) -> None:
        self.cfg, self.run_dir, self.resume, self.runtime = cfg, Path(run_dir), resume, runtime
        self.progress, self.log = progress and runtime.is_main, log if runtime.is_main else _silent
        self.device = rank_device(runtime, resolve_device(cfg.device))
        self.dist = (DistContext(runtime.rank, runtime.world_size, graph_scope=cfg.graph_scope)
                     if runtime.distributed else None)
        self._ddp_frozen: bool | None = None  # the warm-up state the step's DDP wrapper was built in
        self.datasets: dict[str, ImageDataset] = {}
        if cfg.amp and self.device.type not in ("cuda", "cpu"):
            raise ConfigError(f"--amp (bfloat16 autocast) runs on CUDA or the CPU, but the run uses {self.device}")

    # ----------------------------------------------------------------- set-up
    def _prepare_run_dir(self) -> None:
        """Rank 0: refuse a folder that holds another run or files of the user's, clean up, write the config."""
        if not self.resume:
            check_new_run_folder(self.run_dir)
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        removed = remove_stale_temporaries(self.run_dir / "checkpoints")
        if removed:
            self.log(f"removed {removed} partly written checkpoint file(s) of the interrupted run")
        save_config(self.cfg, self.run_dir / CONFIG_FILE)

    def _describe(self, datasets: dict) -> None:
        cfg, train = self.cfg, datasets["train"]
        self.log(f"run folder: {self.run_dir}")
        self.log(f"device: {self.device}{' (bfloat16 autocast)' if cfg.amp else ''}; "
                 f"data-loading workers: {loader_workers(cfg, self.device)}")
        if self.dist is not None:
            world = self.runtime.world_size
            self.log(f"distributed: {world} processes, each {cfg.classes_per_batch // world} of the "
                     f"{cfg.classes_per_batch} classes of every batch; graph_scope {cfg.graph_scope}")
        if train.orientations > 1:
            self.log(f"class augmentation {cfg.class_augmentation}: each of the {train.base.num_classes} training "
                     f"classes in {train.orientations} orientations counts as a class of its own")
        self.log(f"train: {cfg.dataset}, {len(train)} images of {train.num_classes} classes; "
                 f"batches of {cfg.classes_per_batch} classes x {cfg.per_class} images; {cfg.epochs} epochs")
        if cfg.selection == "val":
            val = datasets["val"]
            self.log(f"model selection: best {cfg.selection_metric} on a held-out validation split "
                     f"({val.num_classes} training classes, {len(val)} images), evaluated {_every(cfg.eval_every)}")
        elif cfg.selection == "test":
            self.log(f"model selection: best {cfg.selection_metric} on the TEST split, as the reference release "
                     "does (reproduction only: the test set chooses the checkpoint)")
        else:
            self.log(f"model selection: none, best.pt is the last epoch; the test split is evaluated "
                     f"{_every(cfg.eval_every)} for the curves only")

    def _read_last(self) -> dict[str, Any] | None:
        """Rank 0: ``last.pt``, checked against this run's config; ``None`` when there is none yet."""
        path = self.run_dir / LAST
        if not path.exists():
            self.log(f"{path} does not exist yet (the run stopped before its first epoch ended); starting over")
            self._truncate_metrics(0)
            return None
        state = load_training_checkpoint(path)
        saved = config_from_dict(state["config"], source=str(path))
        ignore = {"device", "workers"}
        changed = sorted(k for k, v in self.cfg.to_dict().items() if k not in ignore and saved.to_dict()[k] != v)
        if changed:
            raise ConfigError(f"--resume continues {self.run_dir} with its own config; these keys differ: "
                              f"{', '.join(changed)} (only device and workers may change)")
        self._truncate_metrics(int(state["epoch"]))
        return state

    def _restore(self, parts: TrainingParts) -> dict[str, Any]:
        """Load ``last.pt`` (read by rank 0, sent to the others) into ``parts``; returns its ``best`` and ``epoch``."""
        path = self.run_dir / LAST
        state = on_main(self.runtime, self._read_last)
        if state is None:
            return {"epoch": 0, "best": no_best()}
        try:
            parts.model.load_state_dict(state["model"])
            parts.generator.load_state_dict(state["generator"])
            parts.metric_loss.load_state_dict(state["metric_loss"])
            for name, optimizer in parts.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
            parts.schedulers.load_state_dict(state["schedulers"])
            parts.step.load_state_dict(state["step"])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{path} does not fit this run: {err}") from err
        self.log(f"resumed {self.run_dir} after epoch {state['epoch']}")
        return {"epoch": int(state["epoch"]), "best": dict(state["best"])}

    def _truncate_metrics(self, epochs_done: int) -> None:
        """Drop records of epochs after ``epochs_done`` (written before the crash, redone now)."""
        metrics_log.truncate(self.run_dir / METRICS_FILE, epochs_done)

    # ------------------------------------------------------------ checkpoints
    def _payload(self, parts: TrainingParts, epoch: int, best: dict, metrics: dict | None, *, full: bool) -> dict:
        return training_payload(
            model_spec=parts.model.spec.to_dict(), model=parts.model.state_dict(),
            generator=parts.generator.state_dict(), metric_loss=parts.metric_loss.state_dict(),
            step=parts.step.state_dict(), epoch=epoch, best=best, config=self.cfg.to_dict(), metrics=metrics,
            optimizers={name: opt.state_dict() for name, opt in parts.optimizers.items()} if full else None,
            schedulers=parts.schedulers.state_dict() if full else None,
        )

    # --------------------------------------------------------------- training
    def _train_epoch(self, parts: TrainingParts, loader, epoch: int, failures: FailureLog) -> dict[str, float]:
        cfg = self.cfg
        rank = (self.runtime.rank,) if self.runtime.distributed else ()
        seed_everything(cfg.seed, epoch, *rank)
        loader.batch_sampler.set_epoch(epoch)
        loader.generator.manual_seed((cfg.seed * 100_003 + epoch) * (1 + 1_000_003 * self.runtime.rank))
        frozen = apply_warmup(parts.model, epoch, cfg.warmup_epochs)
        if self.dist is not None and frozen is not self._ddp_frozen:
            parts.step.model = parts.model  # the old wrapper goes before the new one is built
            parts.step.model = wrap_ddp(parts.model, self.device)
            self._ddp_frozen = frozen
        parts.model.train()
        parts.generator.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}" + (" (warm-up)" if frozen else ""),
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        try:
            sums, count = self._iterate(parts, bar, epoch, failures)
        finally:
            bar.close()
        self._agree(parts)
        parts.step.end_epoch()
        parts.schedulers.step()
        return mean_over_ranks(self.runtime, {name: total / max(count, 1) for name, total in sums.items()})

    def _agree(self, parts: TrainingParts) -> None:
        """Make the ranks' state equal at the end of an epoch: rank 0's batch-norm running
        statistics (each rank saw its own slice) and the running means of the losses over all
        ranks, so that the evaluation, ``last.pt`` and a resumed run see one state."""
        if self.dist is None:
            return
        broadcast_buffers(self.runtime, parts.model)
        broadcast_buffers(self.runtime, parts.generator)
        running = parts.step.running
        running.sums = mean_over_ranks(self.runtime, running.sums)

    def _iterate(self, parts: TrainingParts, bar: tqdm, epoch: int, failures: FailureLog) -> tuple[dict, int]:
        """The iterations of one epoch; returns the sums of the loss terms and the iteration count."""
        cfg = self.cfg
        sums: dict[str, float] = defaultdict(float)
        count = 0
        for count, batch in enumerate(bar, start=1):
            failures.update(batch.failures)
            images = batch.images.to(self.device, non_blocking=True)
            try:
                losses = parts.step(images, batch.labels, cfg.classes_per_batch // self.runtime.world_size,
                                    cfg.per_class)
            except NonFiniteLossError as err:
                last = self.run_dir / LAST
                kept = (
                    f"the last good checkpoint {last} is intact" if last.exists() else "no checkpoint was written yet"
                )
                raise TrainingStopped(
                    f"training stopped in epoch {epoch + 1}, iteration {count}: {err}; {kept}"
                ) from err
            for name, value in losses.items():
                sums[name] += value
            bar.set_postfix({name: f"{total / count:.3f}" for name, total in sums.items()}, refresh=False)
        return sums, count

    def fit(self) -> RetrievalMetrics:
        """Run (or continue) the training and return the test metrics of ``best.pt``."""
        cfg = self.cfg
        datasets = self.datasets = load_datasets(cfg)
        loader = train_loader(cfg, datasets["train"], self.device, self.runtime)
        seed_everything(cfg.seed)
        parts = build_training_parts(cfg, datasets["train"].num_classes, self.device, dist=self.dist)
        state = self._restore(parts) if self.resume else {"epoch": 0, "best": no_best()}
        on_main(self.runtime, self._prepare_run_dir)
        self._describe(datasets)
        best = state["best"]
        failures = FailureLog()
        writer = None
        if self.runtime.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=state["epoch"] + 1)
        try:
            for epoch in range(state["epoch"], cfg.epochs):
                best = self._run_epoch(parts, loader, epoch, best, failures, writer)
        finally:
            if writer is not None:
                writer.close()
        if failures:
            self.log(failures.summary())
        return self._final_test(datasets, best)

    def _run_epoch(self, parts: TrainingParts, loader, epoch: int, best: Best, failures: FailureLog, writer) -> Best:
        """Train one epoch, evaluate when due, select, log, checkpoint; returns the selection state."""
        cfg = self.cfg
        start = time.perf_counter()
        losses = self._train_epoch(parts, loader, epoch, failures)
        train_time = time.perf_counter() - start
        number = epoch + 1
        record: dict[str, Any] = {"epoch": number, "time_s": round(train_time, 3), "loss": losses,
                                  "lr": _learning_rates(parts)}
        metrics = self._evaluate_if_due(parts, number)
        if metrics is not None:
            record["eval"] = {"split": cfg.eval_split, **metrics.to_dict()}
        score = None if metrics is None else _metric_value(metrics, cfg.selection_metric)
        best, is_best = select(best, cfg.selection, number, cfg.epochs, score)

        def write() -> None:
            if is_best:
                atomic_save(self._payload(parts, number, best, record.get("eval"), full=False), self.run_dir / BEST)
            metrics_log.append_record(self.run_dir / METRICS_FILE, record)
            self._write_scalars(writer, record)
            atomic_save(self._payload(parts, number, best, record.get("eval"), full=True), self.run_dir / LAST)

        on_main(self.runtime, write)
        self.log(self._summary(record, train_time, is_best))
        return best

    def _evaluate_if_due(self, parts: TrainingParts, number: int) -> RetrievalMetrics | None:
        """The evaluation split's metrics every ``eval_every`` epochs and after the last one."""
        cfg = self.cfg
        if number % cfg.eval_every and number != cfg.epochs:
            return None
        return evaluate_split(parts.model, self.datasets, cfg.eval_split, dataset_name=cfg.dataset,
                              device=self.device, batch_size=cfg.eval_batch_size,
                              workers=loader_workers(cfg, self.device), runtime=self.runtime)

    def _write_scalars(self, writer, record: dict[str, Any]) -> None:
        """An epoch's losses, learning rates and evaluation as TensorBoard scalars."""
        number = record["epoch"]
        for name, value in record["loss"].items():
            writer.add_scalar(f"loss/{name}", value, number)
        for name, value in record["lr"].items():
            writer.add_scalar(f"lr/{name}", value, number)
        for name, value in record.get("eval", {}).items():
            if isinstance(value, float):
                writer.add_scalar(f"{self.cfg.eval_split}/{name}", value, number)
        writer.flush()

    def _summary(self, record: dict, train_time: float, is_best: bool) -> str:
        terms = "  ".join(f"{k} {v:.4f}" for k, v in record["loss"].items() if k != "J_metric")
        line = f"epoch {record['epoch']}/{self.cfg.epochs}  {terms}  ({train_time:.1f} s)"
        if "eval" in record:
            ev = record["eval"]
            line += f"  | {ev['split']} R@1 {100 * ev['recall@1']:.1f}  MAP@R {100 * ev['map@r']:.1f}"
            line += "  *best*" if is_best and self.cfg.selection != "last" else ""
        return line

    def _final_test(self, datasets: dict, best: dict) -> RetrievalMetrics:
        """Evaluate ``best.pt`` on the test protocol; write and print the table."""
        from gcahng.training.evaluate import load_for_evaluation

        model = on_main(self.runtime, lambda: load_for_evaluation(self.run_dir / BEST)[0])
        metrics = evaluate_split(model, datasets, "test", dataset_name=self.cfg.dataset, device=self.device,
                                 batch_size=self.cfg.eval_batch_size, workers=loader_workers(self.cfg, self.device),
                                 runtime=self.runtime)
        if not self.runtime.is_main:
            return metrics
        result = {"dataset": self.cfg.dataset, "split": "test", "checkpoint": str(BEST), "epoch": best["epoch"],
                  "selection": self.cfg.selection, "selection_metric": self.cfg.selection_metric,
                  "metrics": metrics.to_dict()}
        write_atomically(self.run_dir / TEST_METRICS_FILE, write_bytes((json.dumps(result, indent=2) + "\n").encode()))
        chosen = {"val": "best on validation", "test": "best on test", "last": "last epoch"}[self.cfg.selection]
        self.log(f"test metrics of {self.run_dir / BEST} (epoch {best['epoch']}, {chosen}):\n{metrics}")
        return metrics


def _learning_rates(parts: TrainingParts) -> dict[str, float]:
    """The embedding optimiser's learning rate per parameter group, and the GCL's."""
    rates = {group.get("name", str(i)): group["lr"] for i, group in enumerate(parts.optimizers.embedding.param_groups)}
    rates["gcl"] = parts.optimizers.gcl.param_groups[0]["lr"]
    return rates


def _silent(line: str) -> None:
    """The log of the ranks other than 0."""


def _every(epochs: int) -> str:
    return "every epoch" if epochs == 1 else f"every {epochs} epochs"
