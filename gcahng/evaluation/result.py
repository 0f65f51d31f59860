"""The result of an evaluation: a small typed record that prints as a paper's table."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gcahng.errors import InputError

_RECALL_PREFIX = "recall@"


@dataclass(frozen=True)
class RetrievalMetrics:
    """Retrieval metrics as fractions in [0, 1].

    ``recall[k]``: fraction of the queries with a same-label item among their k nearest
    neighbours, over all queries except the ``num_queries_left_out_of_recall``. ``map_at_r``
    and ``r_precision`` average over the queries with R > 0 only (R = other items with the
    query's label); ``num_queries_without_relevant`` counts the queries left out of them.
    ``nmi`` is None when clustering was not requested.
    """

    recall: dict[int, float]
    map_at_r: float
    r_precision: float
    nmi: float | None
    num_queries: int
    num_queries_without_relevant: int
    num_queries_left_out_of_recall: int = 0

    @property
    def primary(self) -> float:
        """Recall@1, the metric checkpoints are selected on."""
        return self.recall[1]

    def to_dict(self) -> dict[str, float | int | None]:
        """Flat, stable keys: ``recall@<k>`` (ascending k), ``map@r``, ``r_precision``, ``nmi``, counts."""
        out: dict[str, float | int | None] = {
            f"{_RECALL_PREFIX}{k}": value for k, value in sorted(self.recall.items())
        }
        out["map@r"] = self.map_at_r
        out["r_precision"] = self.r_precision
        out["nmi"] = self.nmi
        out["num_queries"] = self.num_queries
        out["num_queries_without_relevant"] = self.num_queries_without_relevant
        out["num_queries_left_out_of_recall"] = self.num_queries_left_out_of_recall
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrievalMetrics:
        """Inverse of :meth:`to_dict`; a missing or malformed key raises :class:`InputError`
        (``num_queries_left_out_of_recall`` may be missing, as in files written before it existed: 0)."""
        try:
            recall = {
                int(key[len(_RECALL_PREFIX) :]): float(value)
                for key, value in data.items()
                if key.startswith(_RECALL_PREFIX)
            }
            nmi = data.get("nmi")
            return cls(
                recall=recall,
                map_at_r=float(data["map@r"]),
                r_precision=float(data["r_precision"]),
                nmi=None if nmi is None else float(nmi),
                num_queries=int(data["num_queries"]),
                num_queries_without_relevant=int(data["num_queries_without_relevant"]),
                num_queries_left_out_of_recall=int(data.get("num_queries_left_out_of_recall", 0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"not a RetrievalMetrics dict ({type(err).__name__}: {err}): {dict(data)!r}") from None

    @classmethod
    def from_json(cls, text: str) -> RetrievalMetrics:
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        """The table a paper reports: one column per metric, values in percent with one decimal."""
        columns = [(f"R@{k}", value) for k, value in sorted(self.recall.items())]
        columns += [("MAP@R", self.map_at_r), ("RP", self.r_precision)]
        if self.nmi is not None:
            columns.append(("NMI", self.nmi))
        cells = [(name, f"{100 * value:.1f}") for name, value in columns]
        widths = [max(len(name), len(value)) for name, value in cells]
        header = "  ".join(name.rjust(width) for (name, _), width in zip(cells, widths, strict=False))
        values = "  ".join(value.rjust(width) for (_, value), width in zip(cells, widths, strict=False))
        note = f"{self.num_queries} queries"
        if self.num_queries_left_out_of_recall:
            note += (f"; {self.num_queries_left_out_of_recall} without a same-label item in the gallery, "
                     "left out of Recall@K, MAP@R and RP")
        elif self.num_queries_without_relevant:
            note += f"; {self.num_queries_without_relevant} without a same-label item, left out of MAP@R and RP"
        return f"{header}\n{values}\n({note})"

