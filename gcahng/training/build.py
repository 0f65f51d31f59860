"""Building a run's parts from a :class:`~gcahng.config.TrainConfig`: device, datasets,
embedding network, metric loss, generator, optimisers, schedules and the training step."""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from gcahng.config import TrainConfig
from gcahng.data import (
    ClassBalancedBatchSampler,
    ImageDataset,
    OrientedClasses,
    build_transforms,
    collate_batch,
    read_splits,
)
from gcahng.data.registry import DATASETS
from gcahng.distributed.context import DistContext
from gcahng.distributed.runtime import SINGLE, Runtime
from gcahng.errors import ConfigError
from gcahng.generator import HardNegativeGenerator
from gcahng.losses import METRIC_LOSSES
from gcahng.models import BACKBONES, EmbeddingModel, create_embedding_model
from gcahng.training.optim import Optimizers, build_optimizers
from gcahng.training.schedule import Schedulers, build_schedulers
from gcahng.training.step import TrainingStep


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else MPS where present, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} was asked for but MPS is not available; use --device cpu or auto")
    return device


def loader_workers(cfg: TrainConfig, device: torch.device) -> int:
    """``cfg.workers``, or by default none on the CPU (decoding would compete with training
    for the cores) and ``min(8, cores)`` otherwise."""
    if cfg.workers is not None:
        return cfg.workers
    return 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)


def seed_everything(seed: int, *keys: int) -> None:
    """Seed torch's global generators from ``(seed, *keys)``: ``(seed,)`` before the networks
    are initialised, ``(seed, epoch)`` before each epoch, so that the random crops, flips and
    dropout of an epoch depend on nothing else and a resumed run repeats them."""
    torch.manual_seed(int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] >> 1))


def load_datasets(cfg: TrainConfig) -> dict[str, ImageDataset | OrientedClasses]:
    """``train`` (with the training transform and ``class_augmentation``: an
    :class:`~gcahng.data.OrientedClasses`), the evaluation splits of the dataset's protocol
    and, for ``selection: val``, the held-out ``val`` split (test transform)."""
    val = {"val_fraction": cfg.val_fraction, "val_count": cfg.val_count} if cfg.selection == "val" else {}
    splits = read_splits(cfg.dataset, cfg.data_root, val_seed=cfg.seed, **val)
    backbone = BACKBONES.get(cfg.backbone)
    train_transform = build_transforms(
        True, cfg.image_size, cfg.resize_size, crop_scale=cfg.crop_scale, hflip=cfg.hflip,
        mean=backbone.input_mean, std=backbone.input_std,
    )
    wanted = ["train", *DATASETS.get(cfg.dataset).eval_splits] + (["val"] if cfg.selection == "val" else [])
    datasets = {split: ImageDataset(splits[split], name=cfg.dataset, split=split) for split in wanted}
    datasets["train"] = OrientedClasses(datasets["train"], cfg.class_augmentation, transform=train_transform)
    return datasets


def train_loader(cfg: TrainConfig, dataset: OrientedClasses, device: torch.device,
                 runtime: Runtime = SINGLE) -> DataLoader:
    """C x m batches (``floor(N / (C*m))`` per epoch), or on each of ``runtime``'s ranks its
    ``C/W x m`` slice of them; call ``loader.batch_sampler.set_epoch`` and seed
    ``loader.generator`` before each epoch."""
    if cfg.classes_per_batch > dataset.num_classes:
        oriented = (
            f", {dataset.base.num_classes} x {dataset.orientations} orientations" if dataset.orientations > 1 else ""
        )
        raise ConfigError(
            f"classes_per_batch={cfg.classes_per_batch} but the training split of {cfg.dataset} has only "
            f"{dataset.num_classes} classes ({'after holding out validation classes' + oriented}); "
            "lower --classes-per-batch"
        )
    if cfg.classes_per_batch % runtime.world_size:
        raise ConfigError(f"classes_per_batch={cfg.classes_per_batch} is not divisible by the {runtime.world_size} "
                          "processes: each takes C / processes classes of every batch; choose a multiple of "
                          f"{runtime.world_size} (the batch is C x per_class images over all processes)")
    if cfg.graph_scope == "local" and cfg.classes_per_batch // runtime.world_size < 2:
        raise ConfigError(f"classes_per_batch={cfg.classes_per_batch} over {runtime.world_size} processes leaves "
                          f"{cfg.classes_per_batch // runtime.world_size} class per process, and graph_scope 'local' "
                          "builds each process's graph from its own classes: each anchor needs negatives of another "
                          f"class, so choose at least {2 * runtime.world_size} or graph_scope 'global'")
    sampler = ClassBalancedBatchSampler(dataset.labels, cfg.classes_per_batch, cfg.per_class, seed=cfg.seed,
                                        rank=runtime.rank, world_size=runtime.world_size)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=loader_workers(cfg, device),
        collate_fn=collate_batch,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),
    )


def build_model(cfg: TrainConfig) -> EmbeddingModel:
    """The embedding network with its starting weights (``weights``, pretrained or random)."""
    model = create_embedding_model(
        cfg.backbone, cfg.embedding_dim, pretrained=cfg.pretrained, weights=cfg.weights,
        image_size=cfg.image_size, resize_size=cfg.resize_size,
    )
    model.freeze_backbone_bn(cfg.freeze_bn)
    return model


def build_metric_loss(cfg: TrainConfig, num_classes: int) -> nn.Module:
    """``METRIC_LOSSES[cfg.metric_loss]``, given ``num_classes`` and ``embedding_dim`` when its
    constructor takes them (proxy losses)."""
    loss_cls = METRIC_LOSSES.get(cfg.metric_loss)
    accepted = inspect.signature(loss_cls).parameters
    offered = {"num_classes": num_classes, "embedding_dim": cfg.embedding_dim}
    return loss_cls(**{k: v for k, v in offered.items() if k in accepted})


@dataclass
class TrainingParts:
    """Everything a run trains and its state, on one device."""

    model: EmbeddingModel
    generator: HardNegativeGenerator
    metric_loss: nn.Module
    optimizers: Optimizers
    schedulers: Schedulers
    step: TrainingStep


def build_training_parts(cfg: TrainConfig, num_classes: int, device: torch.device,
                         model: EmbeddingModel | None = None, dist: DistContext | None = None) -> TrainingParts:
    """The parts of method.md §6 for ``num_classes`` training classes, on ``device``
    (``model`` defaults to :func:`build_model`); ``dist``: this rank's place in a distributed
    run (the trainer then gives the step a DDP-wrapped ``model``)."""
    model = (model if model is not None else build_model(cfg)).to(device)
    generator = HardNegativeGenerator(cfg.embedding_dim, num_classes, cfg.generator_config).to(device)
    metric_loss = build_metric_loss(cfg, num_classes).to(device)
    optimizers = build_optimizers(
        model, generator, base_lr=cfg.base_lr, gnn_lr=cfg.gnn_lr, weight_decay=cfg.weight_decay,
        head_lr_ratio=cfg.embedding_lr_ratio, classifier_lr=cfg.classifier_lr, metric_loss=metric_loss,
    )
    schedulers = build_schedulers(optimizers, epochs=cfg.epochs, decay_epochs=cfg.decay_epochs,
                                  decay_gamma=cfg.decay_gamma, train_gcl=cfg.generator == "gca")
    step = TrainingStep(model, generator, optimizers, metric_loss, cfg.step_config, seed=cfg.seed,
                        autocast_dtype=torch.bfloat16 if cfg.amp else None, dist=dist)
    return TrainingParts(model, generator, metric_loss, optimizers, schedulers, step)
