"""The embedding-size regulariser shared by the N-pair losses (method.md §5)."""
from __future__ import annotations

from torch import Tensor

#: ``0.25 * 3e-3``: the weight of the squared-norm regulariser in ``J_m`` and ``J_syn``.
L2_WEIGHT = 0.25 * 3e-3


def l2_per_row(x: Tensor) -> Tensor:
    """``L2(X)``: sum of squared entries of ``X`` (N, D) divided by its number of rows N."""
    return x.pow(2).sum() / x.shape[0]
