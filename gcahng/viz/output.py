"""Where ``gcahng plot`` writes a figure: an existing file is replaced only with ``--force``, the format
follows the file ending, and the file is written atomically (never half a picture)."""
from __future__ import annotations

import io
import os
from pathlib import Path

from gcahng.errors import InputError
from gcahng.formats.atomic import write_atomically, write_bytes
from gcahng.user_paths import describe, non_regular_reason


def figure_formats() -> list[str]:
    """The file endings (without the dot) matplotlib can write."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_figure_target(out: Path, *, force: bool) -> Path:
    """``out`` when a figure may be written there; else :class:`InputError` naming it (checked before any work)."""
    out = out.expanduser()
    ending = out.suffix.lower().removeprefix(".")
    if ending not in figure_formats():
        raise InputError(f"--out {out}: cannot write a figure as {out.suffix or 'a file without an ending'}; "
                         f"end the name with one of .{', .'.join(figure_formats())}")
    if os.path.lexists(out):
        reason = non_regular_reason(out)
        if reason is not None:
            raise InputError(f"--out {describe(out)}: {reason}; give the file to write")
        if not force:
            raise InputError(f"--out {describe(out)} exists; pass --force to replace it")
    return out


def save_figure(fig, out: Path, dpi: int) -> None:
    """``fig`` into ``out`` (its format from the ending), atomically; parent folders are created."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=out.suffix.lower().removeprefix("."))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, write_bytes(buffer.getvalue()))
