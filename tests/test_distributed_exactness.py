"""Issue 14, item 4: one batch graph over 2 and 4 gloo processes equals one process.

Spawned CPU workers (float64, dropout 0) run 3 full iterations (all three optimisers, both
GCL passes, every loss) on their slices of the same global batches; every parameter and
buffer must equal a single-process run on the global batches to 1e-8 relative. The absolute
1e-10 term is for entries at rounding level: the edge attention's key bias ``lin_k.bias`` has
a gradient that is exactly zero in exact arithmetic (it shifts both scores of a two-way
softmax), so its values stay at about 1e-12, pure rounding noise on either side.
"""
import pytest
import torch
from distributed_helpers import Scenario, Setup, build, global_batches, rank_slice, run_single, run_spawned

RTOL, ATOL = 1e-8, 1e-10

SCENARIOS = [
    Scenario("npair", Setup()),  # J_m and J_syn split by anchor rows
    Scenario("proxy_anchor", Setup(metric_loss="proxy_anchor", random_weighting="per-pair")),  # on the gathered batch
    Scenario("ddp", Setup(), ddp=True),  # embedding network and W_s in DDP, the GCL averaged by the step
    Scenario("layers", Setup(layers=("gat", "mean", "mlp"), gcl_iterations=1)),  # other registered layers
    Scenario("hdml", Setup(mode="hdml")),  # CACAI with lambda = 1, no graph network
    Scenario("local", Setup(), graph_scope="local"),
    Scenario("nan", Setup(), graph_scope="local", nan_rank=1),
]


@pytest.fixture(scope="module", params=[2, 4], ids=lambda w: f"W{w}")
def spawned(request, tmp_path_factory):
    world_size = request.param
    return world_size, run_spawned(SCENARIOS, world_size, str(tmp_path_factory.mktemp(f"dist{world_size}")))


def _assert_state_close(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name, want in expected.items():
        got = actual[name]
        if not want.is_floating_point():
            assert torch.equal(got, want), name
            continue
        err = ((got - want).abs() - RTOL * want.abs()).max().item()
        assert err <= ATOL, f"{name}: off by {err:.3g} beyond {RTOL:g} relative"


@pytest.mark.parametrize("name", ["npair", "proxy_anchor", "ddp", "layers", "hdml"])
def test_global_graph_equals_one_process(spawned, name):
    world_size, ranks = spawned
    scenario = next(s for s in SCENARIOS if s.name == name)
    state, values = run_single(scenario.setup)
    for rank in ranks:
        _assert_state_close(rank[name]["state"], state)
        for got, want in zip(rank[name]["values"], values, strict=True):
            assert got.keys() == want.keys()
            for term, value in want.items():
                assert got[term] == pytest.approx(value, rel=1e-10), term
    # and the run did train: the parameters moved away from their initial values
    initial = {f"model.{k}": v for k, v in build(scenario.setup)[0].state_dict().items()}
    moved = max((state[k] - v).abs().max().item() for k, v in initial.items() if v.is_floating_point())
    assert moved > 1e-3


def test_local_scope_is_one_independent_graph_per_rank(spawned):
    world_size, ranks = spawned
    setup = next(s for s in SCENARIOS if s.name == "local").setup
    local = setup.classes_per_batch // world_size
    images, labels = global_batches(setup)[0]
    # iteration 1 from the same initial networks: the mean of W single-process steps on the slices
    per_rank = []
    for r in range(world_size):
        step = build(setup)[3]
        per_rank.append(step(rank_slice(images, r, world_size, setup), rank_slice(labels, r, world_size, setup),
                             local, setup.per_class))
    first = ranks[0]["local"]["values"][0]
    # the terms computed before any update (J_gen's come after the GCL's first, averaged, step)
    for term in ("J_m", "J_gce", "J_syn", "J_metric", "J_cls"):
        assert first[term] == pytest.approx(sum(v[term] for v in per_rank) / world_size, rel=1e-10), term
    # the global graph is another computation (it sees every class of the batch)
    assert abs(first["J_gce"] - ranks[0]["npair"]["values"][0]["J_gce"]) > 1e-6
    # the averaged gradients keep the ranks' parameters identical (batch-norm statistics stay per rank)
    params = {k for k in ranks[0]["local"]["state"] if not k.endswith(("running_mean", "running_var"))}
    for rank in ranks[1:]:
        for k in params:
            assert torch.equal(rank["local"]["state"][k], ranks[0]["local"]["state"][k]), k


def test_a_nan_on_one_rank_stops_every_rank_naming_it(spawned):
    world_size, ranks = spawned
    for rank in ranks:
        assert "the embeddings became NaN or infinite on rank 1;" in rank["nan"]["error"]
