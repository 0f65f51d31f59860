"""A tiny float64 GCA-HNG setup run on spawned gloo processes and in one process.

Each worker builds the same networks from the same seed, takes its rank's class slots of the
same global chunk-major batches, runs full training iterations (three optimisers, both GCL
passes, every loss) and writes its parameters, buffers and loss values to a file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gcahng.distributed import DistContext
from gcahng.generator import HardNegativeGenerator
from gcahng.hyperparameters import GCLConfig, GeneratorConfig, LossWeights, StepConfig
from gcahng.losses import METRIC_LOSSES
from gcahng.models import EmbeddingModel
from gcahng.models.backbone import Backbone
from gcahng.models.spec import ModelSpec
from gcahng.training import NonFiniteLossError, TrainingStep, build_optimizers


@dataclass(frozen=True)
class Setup:
    """The run both sides perform: ``C x m`` global batches of ``size``-pixel images."""

    classes_per_batch: int = 8
    per_class: int = 3
    num_classes: int = 12
    dim: int = 16
    size: int = 8  # TanhCNN.feature_dim assumes 8
    iterations: int = 3
    metric_loss: str = "npair"
    random_weighting: str = "shared"
    gcl_iterations: int = 2
    heads: int = 2
    layers: tuple[str, str, str] = ("attention", "sum", "attention")  # node-to-node, edge-to-node, node-to-edge
    mode: str = "gca"  # the generator mode
    seed: int = 0


class TanhCNN(Backbone):
    """Conv (stride 2, no bias) -> BatchNorm2d -> Tanh -> flatten: 4 x (s/2)^2 features.

    Smooth and without a parameter whose gradient vanishes identically: in ``tiny_cnn`` on tiny
    images the last BatchNorm2d's bias feeds ReLU and max-pools that almost always pass it, so
    the head's BatchNorm1d cancels it and AdamW turns its rounding-level gradient into updates
    that two exact implementations (even one process with the classes listed in another order)
    do not share beyond 1e-8.
    """

    feature_dim = 4 * 4 * 4  # for 8-pixel images

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), torch.nn.BatchNorm2d(4), torch.nn.Tanh(),
            torch.nn.Flatten(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def build(setup: Setup, dist_ctx: DistContext | None = None):
    """Networks, optimisers and the step, identical on every process (float64, dropout 0)."""
    torch.manual_seed(setup.seed)
    spec = ModelSpec(backbone="tanh_cnn", embedding_dim=setup.dim, image_size=setup.size)
    model = EmbeddingModel(TanhCNN(setup.size), spec).double()
    generator = HardNegativeGenerator(
        setup.dim, setup.num_classes,
        GeneratorConfig(GCLConfig(iterations=setup.gcl_iterations, heads=setup.heads, node_to_node=setup.layers[0],
                                  edge_to_node=setup.layers[1], node_to_edge=setup.layers[2], dropout=0.0),
                        random_weighting=setup.random_weighting),
    ).double()
    metric_loss = METRIC_LOSSES.get(setup.metric_loss)(num_classes=setup.num_classes, embedding_dim=setup.dim).double()
    optimizers = build_optimizers(model, generator, base_lr=1e-2, gnn_lr=1e-2, metric_loss=metric_loss)
    config = StepConfig(LossWeights(alpha=5.0, beta=20.0), mode=setup.mode)
    step = TrainingStep(model, generator, optimizers, metric_loss, config, seed=setup.seed, dist=dist_ctx)
    step.running.j_m, step.running.j_gen = 2.0, 3.0  # as after a first epoch: the synthetic term is on
    return model, generator, metric_loss, step


def global_batches(setup: Setup) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``iterations`` chunk-major global batches (images (m*C, 3, s, s) float64, labels (m*C,))."""
    g = torch.Generator().manual_seed(1234 + setup.seed)
    C, m = setup.classes_per_batch, setup.per_class
    batches = []
    for _ in range(setup.iterations):
        classes = torch.randperm(setup.num_classes, generator=g)[:C]
        images = torch.randn(m * C, 3, setup.size, setup.size, generator=g, dtype=torch.float64)
        batches.append((images, classes.repeat(m)))
    return batches


def rank_slice(x: torch.Tensor, rank: int, world_size: int, setup: Setup) -> torch.Tensor:
    """Rank ``rank``'s class slots of a chunk-major global tensor, chunk-major."""
    C, m = setup.classes_per_batch, setup.per_class
    local = C // world_size
    return x.view(m, C, *x.shape[1:])[:, rank * local:(rank + 1) * local].reshape(m * local, *x.shape[1:])


def state_of(model, generator, metric_loss) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the three parts, by prefixed name."""
    out = {}
    for prefix, part in (("model.", model), ("generator.", generator), ("loss.", metric_loss)):
        out.update({prefix + k: v.detach().clone() for k, v in part.state_dict().items()})
    return out


def run_single(setup: Setup, batches=None) -> tuple[dict, list[dict]]:
    """One process on the global batches: ``(state, values per iteration)``."""
    model, generator, metric_loss, step = build(setup)
    values = [step(x, y, setup.classes_per_batch, setup.per_class) for x, y in (batches or global_batches(setup))]
    return state_of(model, generator, metric_loss), values


@dataclass(frozen=True)
class Scenario:
    """One distributed run: the setup, the graph scope, and whether the embedding network and
    ``W_s`` are wrapped in DDP (else the step averages their gradients, as it does the GCL's)."""

    name: str
    setup: Setup
    graph_scope: str = "global"
    ddp: bool = False
    nan_rank: int | None = None  # this rank's first images are NaN: the step must stop on every rank


def _run_rank(rank: int, world_size: int, scenario: Scenario) -> dict:
    setup = scenario.setup
    ctx = DistContext(rank, world_size, graph_scope=scenario.graph_scope)
    model, generator, metric_loss, step = build(setup, ctx)
    if scenario.ddp:  # wrapped separately; the GCL is not (see RankScope.sync)
        from torch.nn.parallel import DistributedDataParallel as DDP

        step.model = DDP(model)
        generator.classifier = DDP(generator.classifier)
    local = setup.classes_per_batch // world_size
    values = []
    for x, y in global_batches(setup):
        x = rank_slice(x, rank, world_size, setup)
        if rank == scenario.nan_rank:
            x = torch.full_like(x, float("nan"))
        try:
            values.append(step(x, rank_slice(y, rank, world_size, setup), local, setup.per_class))
        except NonFiniteLossError as error:
            return {"error": str(error)}
    if scenario.ddp:
        generator.classifier = generator.classifier.module
    return {"state": state_of(model, generator, metric_loss), "values": values}


def worker(rank: int, world_size: int, scenarios: list[Scenario], init_file: str, out_dir: str) -> None:
    """One spawned rank: a gloo group, every scenario in turn, results to ``out_dir/rank{r}.pt``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        results = {s.name: _run_rank(rank, world_size, s) for s in scenarios}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_spawned(scenarios: list[Scenario], world_size: int, tmp_dir: str) -> list[dict]:
    """Start ``world_size`` gloo workers, forked from this process so that they need not import
    torch and PyG again (the suite runs torch on one thread); per rank,
    ``{scenario name: {"state", "values"}}``."""
    import torch.multiprocessing as mp

    init_file = os.path.join(tmp_dir, "init")
    mp.start_processes(worker, args=(world_size, scenarios, init_file, tmp_dir), nprocs=world_size, join=True,
                       start_method="fork")
    return [torch.load(os.path.join(tmp_dir, f"rank{r}.pt")) for r in range(world_size)]
