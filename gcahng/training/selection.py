"""Model selection: which epoch's model becomes ``best.pt`` (the config's ``selection``)."""
from __future__ import annotations

from typing import TypedDict

from gcahng.choices import Selection


class Best(TypedDict):
    """The selection state saved in every checkpoint: the best score so far and its epoch."""

    score: float | None
    epoch: int | None


def no_best() -> Best:
    """The state before any epoch."""
    return {"score": None, "epoch": None}


def select(best: Best, selection: Selection, epoch: int, epochs: int, score: float | None) -> tuple[Best, bool]:
    """The new selection state after ``epoch`` (1-based, of ``epochs``) and whether that epoch
    is now the best. ``score``: the evaluation's selection metric, ``None`` when not evaluated.
    ``val``/``test`` keep the highest score (the first of equal ones); ``last`` the final epoch."""
    if selection == "last":
        return ({"score": None, "epoch": epoch}, True) if epoch == epochs else (best, False)
    if score is not None and (best["score"] is None or score > best["score"]):
        return {"score": score, "epoch": epoch}, True
    return best, False
