"""Ablations: a grid of config values x seeds, trained run by run, summarised as mean ± std.

    from gcahng.ablation import build_plan, parse_grid, run_ablation

    plan = build_plan(base_cfg, parse_grid(["generator=none,hdml,gca"]), seeds=range(3))
    summaries = run_ablation(plan, "ablations/generator", command="...")

``gcahng ablate`` is the command-line front end (:mod:`gcahng.cli.ablate`).
"""
from gcahng.ablation.grid import (
    AblationPlan,
    Axis,
    Cell,
    Run,
    build_plan,
    format_value,
    parse_grid,
    split_values,
)
from gcahng.ablation.plot import plot_results, save_results_plot
from gcahng.ablation.results import (
    BEST_METRIC,
    METRICS,
    CellSummary,
    SeedResult,
    best_cells,
    markdown_table,
    results_csv,
    results_dict,
    results_markdown,
)
from gcahng.ablation.runner import (
    RESULT_FILES,
    describe_runs,
    read_test_metrics,
    run_ablation,
    run_state,
    write_results,
)

__all__ = [
    "BEST_METRIC",
    "METRICS",
    "RESULT_FILES",
    "AblationPlan",
    "Axis",
    "Cell",
    "CellSummary",
    "Run",
    "SeedResult",
    "best_cells",
    "build_plan",
    "describe_runs",
    "format_value",
    "markdown_table",
    "parse_grid",
    "plot_results",
    "read_test_metrics",
    "results_csv",
    "results_dict",
    "results_markdown",
    "run_ablation",
    "run_state",
    "save_results_plot",
    "split_values",
    "write_results",
]
