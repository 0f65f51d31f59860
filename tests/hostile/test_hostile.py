"""Each hostile case of issue 12 through the real CLI: exit code, no Traceback, the file named,
nothing changed that the command was not given (see harness.py), one test per case."""
from __future__ import annotations

import pytest
from cases import CASES


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_hostile_input(case_id: str, hostile_outcomes) -> None:
    outcome = hostile_outcomes[case_id]
    assert outcome.passed, (
        f"{outcome.case.given}: {'; '.join(outcome.problems)}\n"
        f"command: {' '.join(outcome.command)}\nexit code {outcome.returncode}\noutput:\n{outcome.output[-3000:]}"
    )
