"""``metrics.jsonl``: one JSON object per completed epoch, appended as the run goes.

A record is ``{"epoch": int >= 1, "time_s": float, "loss": {term: float}, "lr": {group: float},
"eval": {"split": str, metric: float, ...}}``; ``eval`` appears only on evaluation epochs.
A crash mid-append leaves a torn last line: :func:`read_records` with ``drop_torn_tail``
drops it (with a warning); any other bad line is a :class:`DataError` naming file and line.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gcahng.errors import DataError, DiskFullError
from gcahng.formats.atomic import is_disk_full, write_atomically, write_bytes

METRICS_FILE = "metrics.jsonl"
logger = logging.getLogger(__name__)


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` (a dict with an integer ``epoch``) as one line of ``path``."""
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as err:  # a torn line left behind is dropped on resume
        if is_disk_full(err):
            raise DiskFullError(f"no space left on device writing {path}") from None
        raise


def _check(record: Any, path: Path, line_no: int) -> dict[str, Any]:
    if not isinstance(record, dict) or type(record.get("epoch")) is not int:
        raise DataError(f"{path}, line {line_no}: expected an object with an integer 'epoch'")
    if not isinstance(record.get("loss", {}), dict) or not isinstance(record.get("eval", {}), dict):
        raise DataError(f"{path}, line {line_no}: 'loss' and 'eval' must be objects")
    return record


def read_records(path: str | Path, *, drop_torn_tail: bool = False) -> list[dict[str, Any]]:
    """The epoch records of ``path``, in file order.

    ``drop_torn_tail``: a last line that is not JSON (what a crash mid-write leaves) is
    dropped with a warning instead of being an error. Raises :class:`DataError` naming the
    file and line for a missing file or any other line that is not a valid record.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no training metrics: {path} does not exist")
    lines = path.read_text(errors="replace").splitlines()
    numbered = [(no, line) for no, line in enumerate(lines, start=1) if line.strip()]
    records = []
    for index, (line_no, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except ValueError as err:
            if drop_torn_tail and index == len(numbered) - 1:
                logger.warning("%s, line %d: dropped a torn last line (an interrupted write)", path, line_no)
                break
            raise DataError(f"{path}, line {line_no}: not JSON ({err})") from None
        records.append(_check(record, path, line_no))
    return records


def truncate(path: str | Path, epochs_done: int) -> None:
    """Keep only the records of epochs ``<= epochs_done`` (a resumed run redoes the others).

    The file is read (torn tail dropped) and validated before it is replaced atomically.
    """
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_records(path, drop_torn_tail=True) if r["epoch"] <= epochs_done]
    write_atomically(path, write_bytes("".join(json.dumps(r) + "\n" for r in kept).encode()))
