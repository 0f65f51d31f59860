"""The evaluation protocol of each benchmark: who queries whom, and at which K Recall@K is reported."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProtocolKind = Literal["leave_one_out", "query_gallery"]


@dataclass(frozen=True)
class Protocol:
    """How a dataset is evaluated.

    ``leave_one_out``: every test item queries all other test items (the query itself is
    excluded by its index). ``query_gallery``: a query set is searched against a separate
    gallery. ``ks`` are the K of the Recall@K a paper reports for the dataset.
    """

    kind: ProtocolKind
    ks: tuple[int, ...]


_SMALL = Protocol("leave_one_out", (1, 2, 4, 8))

PROTOCOLS: dict[str, Protocol] = {
    "cub200": _SMALL,
    "cars196": _SMALL,
    "sop": Protocol("leave_one_out", (1, 10, 100, 1000)),
    "inshop": Protocol("query_gallery", (1, 10, 20, 30, 40, 50)),
    "digits": _SMALL,
    "folder": _SMALL,
}
