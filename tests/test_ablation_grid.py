"""``--grid`` parsing and the ablation plan: values coerced by the config, errors before training."""
from __future__ import annotations

import itertools
import re

import pytest

from gcahng.ablation import Axis, build_plan, parse_grid, split_values
from gcahng.config import FIELD_NAMES, TrainConfig, load_config, preset_path
from gcahng.errors import ConfigError
from gcahng.graph import NODE_TO_NODE


@pytest.fixture(scope="module")
def digits() -> TrainConfig:
    return load_config(preset_path("digits"))


def test_split_values_keeps_commas_inside_brackets() -> None:
    assert split_values("a, [0.5, 1.0],{x: 1, y: 2} ,b") == ["a", "[0.5, 1.0]", "{x: 1, y: 2}", "b"]
    assert split_values("gca") == ["gca"]


def test_parse_grid_reads_values_as_yaml_in_the_order_given() -> None:
    axes = parse_grid(["generator=none,hdml,gca", "alpha=4,5.5,1e-1", "crop_scale=[0.5, 1.0],[0.8,1]",
                       "hflip=true,false", "resize_size=null,40"])
    assert axes == [
        Axis(("generator",), (("none",), ("hdml",), ("gca",))),
        Axis(("alpha",), ((4,), (5.5,), ("1e-1",))),  # YAML 1.1 keeps 1e-1 a string; the config coerces it
        Axis(("crop_scale",), (([0.5, 1.0],), ([0.8, 1],))),
        Axis(("hflip",), ((True,), (False,))),
        Axis(("resize_size",), ((None,), (40,))),
    ]


def test_linked_keys_form_one_axis() -> None:
    axes = parse_grid(["[generator, node_to_node]=[hdml,none], [gca, attention],[gca,mean]", "alpha=4,5"])
    assert axes[0] == Axis(("generator", "node_to_node"), (("hdml", "none"), ("gca", "attention"), ("gca", "mean")))
    assert axes[0].assignment(2) == {"generator": "gca", "node_to_node": "mean"}


@pytest.mark.parametrize("item, message", [
    ("generator", "--grid expects KEY=V1,V2,... or [KEY1,KEY2]=[A1,A2],[B1,B2],..., got 'generator'"),
    ("=a,b", "--grid expects KEY=V1,V2,..."),
    ("seed=0,1", "'seed' cannot be a grid key; the seeds come from --seeds and --seed-offset"),
    ("generator=gca,,none", "empty value"),
    ("alpha=[1,", "is not valid YAML"),
    ("[alpha,beta]=[1,2],[3]", "'[3]' must be a list of 2 values, one per key of ['alpha', 'beta']"),
    ("[alpha,beta]=1", "'1' must be a list of 2 values"),
    ("[alpha,alpha]=[1,2]", "a key is listed twice"),
    ("[alpha,[beta]]=[1,2]", "the keys must be KEY or [KEY1,KEY2,...]"),
    ("[alpha,seed]=[1,2]", "'seed' cannot be a grid key"),
])
def test_parse_grid_errors(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_grid([item])


def test_unknown_key_lists_every_valid_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_grid(["node2node=mean"])
    assert "unknown config key 'node2node'" in str(info.value)
    assert str(info.value).endswith("valid keys: " + ", ".join(FIELD_NAMES))


def test_a_key_given_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="key 'alpha' is given twice"):
        parse_grid(["alpha=1", "alpha=2"])
    with pytest.raises(ConfigError, match="key 'beta' is given twice"):
        parse_grid(["beta=1", "[alpha,beta]=[1,2]"])
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'gamma'; valid keys: dataset,")):
        parse_grid(["[alpha,gamma]=[1,2]"])


def test_plan_is_the_cartesian_product_first_key_slowest_with_coerced_values(digits: TrainConfig) -> None:
    axes = parse_grid(["generator=none,gca", "alpha=4,1e-1", "crop_scale=[0.5, 1],[0.8, 1.0]"])
    plan = build_plan(digits, axes, seeds=[3, 4])
    assert plan.keys == ("generator", "alpha", "crop_scale")
    expected = list(itertools.product(["none", "gca"], [4.0, 0.1], [[0.5, 1.0], [0.8, 1.0]]))
    assert [tuple(c.values.values()) for c in plan.cells] == expected
    assert all(isinstance(c.values["alpha"], float) for c in plan.cells)
    # runs are cell-major, each with the cell's values, its seed and the rest of the base config
    assert [(r.cell.slug, r.seed) for r in plan.runs] == [(c.slug, s) for c in plan.cells for s in (3, 4)]
    for run in plan.runs:
        assert run.config.seed == run.seed
        assert {k: getattr(run.config, k) for k in plan.keys} == {
            k: tuple(v) if isinstance(v, list) else v for k, v in run.cell.values.items()}
        assert run.config.epochs == digits.epochs and run.config.backbone == digits.backbone
        assert run.folder == f"runs/{run.cell.slug}/seed{run.seed}"
    slugs = [c.slug for c in plan.cells]
    assert len(set(slugs)) == len(slugs) and all(re.fullmatch(r"[A-Za-z0-9._=+,-]+", s) for s in slugs)
    assert plan.cells[0].slug == "generator=none,alpha=4.0,crop_scale=-0.5-1.0-"
    assert plan.cells[0].label == "generator=none, alpha=4.0, crop_scale=[0.5, 1.0]"


def test_an_empty_grid_is_one_base_cell(digits: TrainConfig) -> None:
    plan = build_plan(digits, [], seeds=range(2))
    assert [c.slug for c in plan.cells] == ["base"] and [r.seed for r in plan.runs] == [0, 1]


def test_an_unregistered_value_names_the_key_and_lists_the_registered_layers(digits: TrainConfig) -> None:
    with pytest.raises(ConfigError) as info:
        build_plan(digits, parse_grid(["generator=gca", "node_to_node=mean,my_layer"]), seeds=[0])
    assert str(info.value) == ("--grid node_to_node=my_layer: config key 'node_to_node': unknown name 'my_layer'; "
                               f"choose one of {', '.join(NODE_TO_NODE.names())}")


@pytest.mark.parametrize("grid, message", [
    (["alpha=high"], "--grid alpha=high: config key 'alpha' must be number, got 'high'"),
    (["generator=gca,fancy"], "--grid generator=fancy: config key 'generator' must be 'gca' | 'hdml' | 'none'"),
    (["heads=2,3"], "--grid heads=3: config key 'heads' (3) must divide 'embedding_dim'"),
    (["alpha=1,1.0"], "--grid: the value alpha=1.0 is listed twice"),
    (["[generator,node_to_node]=[gca,mean],[gca,foo]"],
     "--grid generator=gca, node_to_node=foo: config key 'node_to_node': unknown name 'foo'"),
])
def test_bad_values_fail_when_the_plan_is_built(digits: TrainConfig, grid: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_plan(digits, parse_grid(grid), seeds=[0])


def test_a_combination_that_is_invalid_is_named_by_its_cell(digits: TrainConfig) -> None:
    with pytest.raises(ConfigError, match=re.escape("--grid cell heads=3, embedding_dim=64: config key 'heads' (3)")):
        build_plan(digits, parse_grid(["heads=3", "embedding_dim=66,64"]), seeds=[0])


def test_seeds_must_be_distinct(digits: TrainConfig) -> None:
    with pytest.raises(ConfigError, match="distinct"):
        build_plan(digits, {}, seeds=[1, 1])


def test_a_value_valid_only_with_another_grid_value_is_accepted(digits: TrainConfig) -> None:
    plan = build_plan(digits, parse_grid(["heads=3", "embedding_dim=66,129"]), seeds=[0])
    assert [(c.values["heads"], c.values["embedding_dim"]) for c in plan.cells] == [(3, 66), (3, 129)]


def test_a_linked_axis_sets_its_keys_together(digits: TrainConfig) -> None:
    axes = parse_grid(["[generator,node_to_node]=[hdml,none],[gca,attention],[gca,mean]", "alpha=4,5"])
    plan = build_plan(digits, axes, seeds=[0])
    assert plan.keys == ("generator", "node_to_node", "alpha")
    assert [tuple(c.values.values()) for c in plan.cells] == [
        ("hdml", "none", 4.0), ("hdml", "none", 5.0), ("gca", "attention", 4.0), ("gca", "attention", 5.0),
        ("gca", "mean", 4.0), ("gca", "mean", 5.0)]
    for run in plan.runs:
        assert (run.config.generator, run.config.node_to_node) == tuple(run.cell.values[k] for k in plan.keys[:2])
