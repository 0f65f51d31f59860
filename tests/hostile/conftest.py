"""The hostile-input suite's session: the shared inputs, the cases run as real CLI processes
(``--hostile-jobs`` at a time), and the report ``--reliability-report PATH`` writes from the results."""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cases import CASES  # noqa: E402
from harness import Outcome, run_case  # noqa: E402
from report import write_report  # noqa: E402
from world import build_world  # noqa: E402

OUTCOMES: dict[str, Outcome] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hostile", "the hostile-input suite (tests/hostile)")
    group.addoption("--hostile-jobs", type=int, default=2, help="CLI processes run at once (default 2).")
    group.addoption("--reliability-report", metavar="PATH", default=None,
                    help="Write the table of every case's outcome (and the kill -9 and disk-full results of the "
                         "session) to PATH, e.g. docs/reliability.md.")


@pytest.fixture(scope="session")
def hostile_outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The outcome of every selected case, run once per session."""
    selected = [item.callspec.params["case_id"] for item in request.session.items
                if hasattr(item, "callspec") and "case_id" in item.callspec.params]
    world = build_world(tmp_path_factory.mktemp("world"))
    root = tmp_path_factory.mktemp("cases")
    cases = [c for c in CASES if c.id in selected]
    with ThreadPoolExecutor(max_workers=max(1, request.config.getoption("--hostile-jobs", default=2))) as pool:
        for outcome in pool.map(lambda c: run_case(c, root / c.id, world), cases):
            OUTCOMES[outcome.case.id] = outcome
    return OUTCOMES


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    # the options exist when tests/hostile is named on the command line (an initial conftest)
    path = config.getoption("--reliability-report", default=None)
    if path and OUTCOMES:
        reports = [r for key in ("passed", "failed", "error") for r in terminalreporter.stats.get(key, [])
                   if getattr(r, "when", "call") == "call"]
        write_report(Path(path), [OUTCOMES[c.id] for c in CASES if c.id in OUTCOMES], reports,
                     jobs=config.getoption("--hostile-jobs", default=2))
        terminalreporter.write_line(f"reliability report written to {path}")
