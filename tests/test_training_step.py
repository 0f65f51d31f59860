"""The GCA-HNG iteration of method.md §6: gradient routing, running means, state, errors."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from core_helpers import chunk_major_labels
from torch import nn

from gcahng.generator import HardNegativeGenerator
from gcahng.graph import build_batch_graph
from gcahng.hyperparameters import GCLConfig, GeneratorConfig, LossWeights, StepConfig
from gcahng.losses import NPairLoss, generator_loss
from gcahng.training import NonFiniteLossError, Optimizers, TrainingStep, build_optimizers

C, M, D, IN = 4, 3, 8, 12


class RecordingAdamW(torch.optim.AdamW):
    """AdamW that records the gradients it is stepped with."""

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.seen: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        self.seen.append(
            [p.grad.clone() if p.grad is not None else None for g in self.param_groups for p in g["params"]]
        )
        return super().step(closure)


def _setup(seed=0, lr=0.0, optimizer=RecordingAdamW):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(IN, 16), nn.Tanh(), nn.Linear(16, D))
    gen = HardNegativeGenerator(D, 6, GeneratorConfig(GCLConfig(iterations=1, heads=2)))
    opts = Optimizers(
        embedding=optimizer(net.parameters(), lr=lr),
        gcl=optimizer(gen.gcl.parameters(), lr=lr),
        classifier=optimizer(gen.classifier.parameters(), lr=lr),
    )
    x = torch.randn(C * M, IN) * 3
    y = chunk_major_labels(C, M, [5, 0, 3, 1])
    return net, gen, opts, x, y


def _grads(loss, params):
    params = list(params)
    trainable = [p for p in params if p.requires_grad]
    computed = torch.autograd.grad(loss, trainable, retain_graph=True, allow_unused=True)
    grads = dict(zip(map(id, trainable), computed, strict=False))
    return [g.clamp(-10, 10) if (g := grads.get(id(p))) is not None else torch.zeros_like(p) for p in params]


def _assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=False):
        torch.testing.assert_close(a if a is not None else torch.zeros_like(e), e, rtol=1e-5, atol=1e-6)


def test_gradient_routing_of_one_step():
    net, gen, opts, x, y = _setup()
    gen.eval()  # no dropout, fixed BN statistics: the recomputation below sees the same numbers
    step = TrainingStep(net, gen, opts, config=StepConfig(LossWeights(alpha=5.0, beta=20.0)))
    step.running.j_m, step.running.j_gen = 2.0, 3.0  # as after a first epoch: synthetic term on
    rng = torch.Generator()
    rng.set_state(step.rng.get_state())
    step(x, y, C, M)

    z = net(x)
    graph = build_batch_graph(z, y, C, M)
    graph_lam, logits = gen.gcl(graph)
    j_gce = F.cross_entropy(logits, y)
    neg = gen.interpolate(z, graph_lam.detach(), step.gamma, y, C, M, rng, graph)
    j_metric = NPairLoss()(z, y, C, M) + step.synthetic_weight * NPairLoss().synthetic(z, neg, y, C, M) + j_gce

    # the embedding network is stepped with the gradients of J_metric
    _assert_same(opts.embedding.seen[0], _grads(j_metric, net.parameters()))
    # the GCL's first step sees J_gce only: nothing from J_syn (lambda is detached for CACAI)
    _assert_same(opts.gcl.seen[0], _grads(j_gce, gen.gcl.parameters()))
    # the classifier sees J_cls only
    j_cls = 10 * F.cross_entropy(gen.classifier(z.detach()), y)
    _assert_same(opts.classifier.seen[0], _grads(j_cls, gen.classifier.parameters()))
    # the GCL's second step sees J_gen only, computed on detached embeddings
    zd = z.detach()
    graph = build_batch_graph(zd, y, C, M)
    lam, _ = gen.gcl(graph)
    neg2 = gen.interpolate(zd, lam, step.gamma, y, C, M, rng, graph)
    j_gen = generator_loss(zd, lam, neg2, gen.classifier(neg2.embeddings), LossWeights(), graph=graph)["J_gen"]
    _assert_same(opts.gcl.seen[1], _grads(j_gen, gen.gcl.parameters()))
    # J_gen left no gradient on the embedding network: its grads are still J_metric's
    _assert_same([p.grad for p in net.parameters()], opts.embedding.seen[0])
    assert len(opts.embedding.seen) == 1 and len(opts.classifier.seen) == 1 and len(opts.gcl.seen) == 2


@pytest.mark.parametrize("active", ["embedding", "gcl", "classifier"])
def test_each_optimizer_changes_only_its_own_parameters(active):
    net, gen, opts, x, y = _setup(lr=1e-2, optimizer=torch.optim.AdamW)
    for name, opt in opts.items():
        if name != active:
            for group in opt.param_groups:
                group["lr"] = 0.0
    owners = {"embedding": net, "gcl": gen.gcl, "classifier": gen.classifier}
    before = {name: [p.detach().clone() for p in mod.parameters()] for name, mod in owners.items()}
    TrainingStep(net, gen, opts)(x, y, C, M)
    for name, mod in owners.items():
        changed = any(not torch.equal(b, p) for b, p in zip(before[name], mod.parameters(), strict=False))
        assert changed == (name == active), name


def test_gradients_are_clipped_by_value():
    net, gen, opts, x, y = _setup()
    TrainingStep(net, gen, opts, config=StepConfig(grad_clip=1e-3))(x * 100, y, C, M)
    for seen in (opts.embedding.seen, opts.gcl.seen):  # method.md §6 clips these two, not W_s
        for grads in seen:
            assert all(g is None or g.abs().max() <= 1e-3 for g in grads)
    assert max(g.abs().max() for g in opts.classifier.seen[0]) > 1e-3


def test_running_means_roll_over_at_epoch_end():
    net, gen, opts, x, y = _setup(lr=1e-3)
    step = TrainingStep(net, gen, opts, config=StepConfig(LossWeights(alpha=4.0, beta=30.0)))
    assert step.gamma == pytest.approx(math.exp(-4.0 / 1e6))
    assert step.synthetic_weight == pytest.approx(1 - math.exp(-30.0 / 1e6))
    results = [step(x, y, C, M) for _ in range(3)]
    assert step.running.j_m == 1e6  # unchanged until the epoch ends
    step.end_epoch()
    assert step.running.j_m == pytest.approx(sum(r["J_m"] for r in results) / 3)
    assert step.running.j_gen == pytest.approx(sum(r["J_gen"] for r in results) / 3)
    assert step.gamma == pytest.approx(math.exp(-4.0 / step.running.j_m))
    step.end_epoch()  # an epoch without steps keeps the previous means
    assert step.running.j_m == pytest.approx(sum(r["J_m"] for r in results) / 3)


def _run(n_steps):
    net, gen, opts, x, y = _setup(lr=1e-3, optimizer=torch.optim.AdamW)
    step = TrainingStep(net, gen, opts, seed=11)
    out = []
    for i in range(n_steps):
        out.append(step(x + i, y, C, M))
        if i == 1:
            step.end_epoch()
    snapshot = {"net": net.state_dict(), "gen": gen.state_dict(), "step": step.state_dict(),
                "torch_rng": torch.get_rng_state(), **{n: o.state_dict() for n, o in opts.items()}}
    return out, snapshot


def test_state_dict_restores_an_identical_continuation():
    full, _ = _run(4)
    _, state = _run(2)
    state = copy.deepcopy(state)
    net, gen, opts, x, y = _setup(lr=1e-3, optimizer=torch.optim.AdamW)
    step = TrainingStep(net, gen, opts, seed=999)
    net.load_state_dict(state["net"])
    gen.load_state_dict(state["gen"])
    for name, opt in opts.items():
        opt.load_state_dict(state[name])
    step.load_state_dict(state["step"])
    torch.set_rng_state(state["torch_rng"])
    resumed = [step(x + i, y, C, M) for i in (2, 3)]
    assert resumed == full[2:]


class _NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(IN, D)

    def forward(self, x):
        return self.lin(x) * float("nan")


def test_non_finite_loss_stops_before_any_update():
    _, gen, _, x, y = _setup()
    net = _NaNNet()
    opts = build_optimizers(net, gen, base_lr=1e-2, gnn_lr=1e-2)
    before = [p.detach().clone() for p in [*net.parameters(), *gen.parameters()]]
    with pytest.raises(NonFiniteLossError, match="the embeddings became NaN or infinite"):
        TrainingStep(net, gen, opts, config=StepConfig(mode="none"))(x, y, C, M)
    assert all(torch.equal(b, p) for b, p in zip(before, [*net.parameters(), *gen.parameters()], strict=False))


@pytest.mark.parametrize("mode, keys", [
    ("gca", {"J_m", "J_gce", "J_syn", "J_metric", "J_cls", "J_soft", "J_sim", "J_div", "J_gen"}),
    ("hdml", {"J_m", "J_syn", "J_metric"}),
    ("none", {"J_m", "J_metric"}),
])
def test_generator_modes_give_finite_losses(mode, keys):
    net, gen, opts, x, y = _setup(lr=1e-3, optimizer=torch.optim.AdamW)
    step = TrainingStep(net, gen, opts, config=StepConfig(mode=mode))
    for _ in range(2):
        out = step(x, y, C, M)
        step.end_epoch()
    assert set(out) == keys and all(math.isfinite(v) for v in out.values())


def test_bad_step_inputs():
    net, gen, opts, x, y = _setup()
    with pytest.raises(ValueError, match="per_class must be >= 2"):
        TrainingStep(net, gen, opts)(x, chunk_major_labels(C * M, 1), C * M, 1)
    one_class = torch.nn.BatchNorm1d(IN)  # a forward in training mode would move its running mean
    with pytest.raises(ValueError, match=r"the batch must hold >= 2 classes \(each anchor needs negatives of another"
                                         r" class\), got 1"):
        TrainingStep(nn.Sequential(one_class, net), gen, opts)(x, torch.full((C * M,), 5), 1, C * M)
    assert one_class.num_batches_tracked == 0  # refused before the embedding network ran
    with pytest.raises(ValueError, match="generator mode"):
        StepConfig(mode="fancy")


def test_build_optimizers_uses_backbone_and_head_groups():
    class WithHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.fc = nn.Linear(IN, 16), nn.Linear(16, D)

        def forward(self, x):
            return self.fc(self.backbone(x))

        def backbone_parameters(self):
            return self.backbone.parameters()

        def head_parameters(self):
            return self.fc.parameters()

    gen = HardNegativeGenerator(D, 6, GeneratorConfig(GCLConfig(iterations=1, heads=2)))
    opts = build_optimizers(WithHead(), gen, base_lr=1e-4, gnn_lr=3e-4, weight_decay=1e-4, head_lr_ratio=10.0)
    lrs = [g["lr"] for g in opts.embedding.param_groups]
    assert lrs == [1e-4, 1e-3]
    assert opts.gcl.param_groups[0]["lr"] == 3e-4 and opts.gcl.param_groups[0]["weight_decay"] == 1e-4
    assert opts.classifier.param_groups[0]["lr"] == 1e-3
    default_decay = torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    assert opts.classifier.param_groups[0]["weight_decay"] == default_decay


def test_metric_loss_parameters_join_the_embedding_optimizer_with_their_multiplier():
    class ProxyLoss(nn.Module):
        lr_multiplier = 100.0

        def __init__(self):
            super().__init__()
            self.proxies = nn.Parameter(torch.randn(6, D))

    net = nn.Linear(IN, D)
    gen = HardNegativeGenerator(D, 6, GeneratorConfig(GCLConfig(iterations=1, heads=2)))
    loss = ProxyLoss()
    opts = build_optimizers(net, gen, base_lr=1e-4, gnn_lr=1e-4, metric_loss=loss)
    groups = {g["name"]: g for g in opts.embedding.param_groups}
    assert groups["metric_loss"]["lr"] == pytest.approx(1e-2)
    assert groups["metric_loss"]["params"][0] is loss.proxies
