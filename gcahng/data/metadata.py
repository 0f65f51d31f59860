"""Reading the benchmarks' metadata files with errors that name the file and the line.

All readers accept CRLF line endings and a UTF-8 byte-order mark, skip blank lines, and
report a malformed line as ``<file>:<line number>: <what is wrong>: <the line>``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gcahng.errors import DataError


def read_lines(path: Path, *, skip: int = 0) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` (1-based, trailing whitespace and CR removed) for each
    non-blank line after the first ``skip`` lines."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"missing metadata file {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read metadata file {path}: {err}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if number > skip and line.strip():
            yield number, line.rstrip()


def read_rows(
    path: Path, *, fields: int, skip: int = 0, last_field_may_have_spaces: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` for each non-blank line of a whitespace-separated file.

    ``skip`` header lines are passed over. With ``last_field_may_have_spaces`` the line is
    split into at most ``fields`` parts, so the last field keeps any spaces (class names);
    otherwise a line with a different field count is an error.
    """
    for number, line in read_lines(path, skip=skip):
        parts = line.split(maxsplit=fields - 1) if last_field_may_have_spaces else line.split()
        if len(parts) != fields:
            raise DataError(
                f"{path}:{number}: malformed line, expected {fields} fields separated by spaces, "
                f"got {len(parts)}: {line!r}"
            )
        yield number, parts


def header_lines(path: Path, count: int) -> list[str]:
    """The first ``count`` lines of a text file (fewer if the file is shorter), stripped."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return [line.strip() for _, line in zip(range(count), handle, strict=False)]
    except FileNotFoundError:
        raise DataError(f"missing metadata file {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read metadata file {path}: {err}") from None


def parse_int(value: str, path: Path, line_number: int, what: str, *, minimum: int = 1) -> int:
    """``int(value)``, or a :class:`DataError` naming the file, line and field."""
    try:
        number = int(value)
    except ValueError:
        raise DataError(f"{path}:{line_number}: {what} must be an integer, got {value!r}") from None
    if number < minimum:
        raise DataError(f"{path}:{line_number}: {what} must be >= {minimum}, got {number}")
    return number
