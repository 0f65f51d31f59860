"""Model selection, as a pure function of the selection state, the epoch and its score."""
from gcahng.training.selection import no_best, select


def test_val_and_test_keep_the_first_highest_score() -> None:
    best, flags = no_best(), []
    for epoch, score in enumerate([0.5, None, 0.7, 0.7, 0.6], start=1):
        best, is_best = select(best, "val", epoch, 5, score)
        flags.append(is_best)
    assert best == {"score": 0.7, "epoch": 3}
    assert flags == [True, False, True, False, False]


def test_last_keeps_only_the_final_epoch() -> None:
    best = no_best()
    for epoch in (1, 2):
        best, is_best = select(best, "last", epoch, 3, 0.9)
        assert not is_best and best == no_best()
    assert select(best, "last", 3, 3, None) == ({"score": None, "epoch": 3}, True)
