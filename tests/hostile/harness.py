"""Running the real CLI on one hostile input and checking what every such run must satisfy.

A :class:`Case` is one ``python -m gcahng ...`` process. Its ``setup`` writes the inputs into a
folder of its own (``case_dir/inputs``) beside a sentinel folder of user files
(``case_dir/sentinel``) and returns the command line. :func:`run_case` hashes the case folder
(every file, symlinks by target) and the checkout's tracked files, runs the command with a time
limit, hashes both again and returns an :class:`Outcome`; :func:`problems` lists every way the
outcome breaks the rules: the exit code, a ``Traceback`` in stdout or stderr, a missing text
(the named file, the field), a changed file the command was not given to write, a changed
checkout, a hang.
"""
from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240
"""Seconds one command may take (a hang, e.g. on a FIFO, fails the case instead of the suite)."""

Setup = Callable[[Path, Any], "Command"]


@dataclass
class Command:
    """What ``setup`` returns: the arguments after ``python -m gcahng``, the texts the output must
    contain, and the paths below the case folder the command was given to write (files or folders)."""

    args: Sequence[str | os.PathLike]
    expect: Sequence[str] = ()
    writes: Sequence[Path] = ()
    check: Callable[[str], list[str]] | None = None
    """Further checks on the combined output, after the run; returns problems found."""
    cleanup: Callable[[], None] | None = None


@dataclass(frozen=True)
class Case:
    """One hostile input: ``item`` of issue 12 ("1".."7", or "earlier"), an id, what is handed over,
    the outcome required (``exit``: "error" = non-zero, "ok" = zero) and how to build it."""

    id: str
    item: str
    given: str
    required: str
    exit: str
    setup: Setup


@dataclass
class Outcome:
    case: Case
    command: list[str] = field(default_factory=list)
    returncode: int | None = None
    output: str = ""
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)
    checkout_changed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    root: Path = Path()
    expect: Sequence[str] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    def shorten(self, text: str) -> str:
        """``text`` with the case folder written ``CASE`` and pytest's temporary folder ``TMP``."""
        return text.replace(str(self.root), "CASE").replace(str(self.root.parents[1]), "TMP")

    def summary(self) -> str:
        """The output line that shows what the command said: the first line holding an expected
        text, else the ``Error:`` line, else the last line."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        chosen = next((line for line in lines if any(text in line for text in self.expect)), None)
        chosen = chosen or next((line for line in lines if line.startswith("Error:")), None)
        return self.shorten(chosen or (lines[-1] if lines else ""))[:180]


def file_hashes(root: Path, skip: Sequence[Path] = ()) -> dict[str, str]:
    """``relative path -> digest`` of everything below ``root`` (not following symlinks: a link is
    hashed by its target; FIFOs, sockets and devices by their type), leaving out ``skip`` and
    everything below it."""
    skip = [Path(p).absolute() for p in skip]
    out: dict[str, str] = {}
    for directory, subdirs, files in os.walk(root, followlinks=False):
        base = Path(directory)
        for name in files + [d for d in subdirs if (base / d).is_symlink()]:
            path = base / name
            if not any(path == s or s in path.parents for s in skip):
                out[str(path.relative_to(root))] = _digest(path)
    return out


def _digest(path: Path) -> str:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return "link:" + os.readlink(path)
    if not stat.S_ISREG(mode):
        return f"special:{stat.S_IFMT(mode)}"
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkout_hashes() -> dict[str, str]:
    """Digest of every file ``git ls-files`` lists in the checkout (a missing file counts too)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=CHECKOUT, capture_output=True, check=True).stdout
    out = {}
    for name in filter(None, listed.decode().split("\0")):
        path = CHECKOUT / name
        out[name] = _digest(path) if path.exists() or path.is_symlink() else "missing"
    return out


def _differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(f"{name} ({'added' if name not in before else 'removed' if name not in after else 'changed'})"
                  for name in set(before) | set(after) if before.get(name) != after.get(name))


def cli_environment() -> dict[str, str]:
    """The environment of the commands: this checkout first on the path, one thread, no colour."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NO_COLOR="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


def run_case(case: Case, case_dir: Path, world: Any) -> Outcome:
    """Build the case's inputs in ``case_dir``, run its command there and check the result."""
    (case_dir / "inputs").mkdir(parents=True)
    make_sentinel(case_dir / "sentinel")
    outcome = Outcome(case, root=case_dir)
    try:
        command = case.setup(case_dir / "inputs", world)
    except Exception as err:  # a broken case must show up in the table, not stop the suite
        outcome.problems.append(f"setup failed: {type(err).__name__}: {err}")
        return outcome
    argv = [sys.executable, "-m", "gcahng", *map(str, command.args)]
    outcome.command, outcome.expect = argv, command.expect
    before = file_hashes(case_dir, command.writes)
    checkout_before = checkout_hashes()
    start = time.perf_counter()
    try:
        try:
            done = subprocess.run(argv, cwd=case_dir, env=cli_environment(), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
            outcome.returncode, outcome.output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            outcome.output = _text(err.stdout) + _text(err.stderr)
            outcome.problems.append(f"did not finish within {TIMEOUT_S} s (hangs?)")
        outcome.seconds = time.perf_counter() - start
        outcome.changed = _differences(before, file_hashes(case_dir, command.writes))
        outcome.checkout_changed = _differences(checkout_before, checkout_hashes())
        outcome.problems += problems(outcome, command)
    finally:
        if command.cleanup is not None:
            command.cleanup()
    return outcome


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def problems(outcome: Outcome, command: Command) -> list[str]:
    """Every rule of the suite that ``outcome`` breaks."""
    found = []
    code, case = outcome.returncode, outcome.case
    if code is not None:
        if case.exit == "error" and code == 0:
            found.append("exit code 0, expected an error (non-zero)")
        if case.exit == "ok" and code != 0:
            found.append(f"exit code {code}, expected 0")
        if case.exit == "error" and code != 0 and "Error:" not in outcome.output:
            found.append("no 'Error:' line")
    if "Traceback" in outcome.output:
        found.append("a Traceback in the output")
    found += [f"output lacks {text!r}" for text in command.expect if text not in outcome.output]
    if outcome.changed:
        found.append("changed what it was not given: " + ", ".join(outcome.changed[:5]))
    if outcome.checkout_changed:
        found.append("changed the checkout: " + ", ".join(outcome.checkout_changed[:5]))
    if command.check is not None and code is not None:
        found += command.check(outcome.output)
    return found


SENTINEL_FILES = {"notes.txt": b"a user's notes\n", "photo.png": None, "secret.key": b"not for the index\n"}


def make_sentinel(folder: Path) -> None:
    """User files beside the inputs: nothing may read them into an output or change them."""
    from PIL import Image

    folder.mkdir(parents=True)
    for name, data in SENTINEL_FILES.items():
        if data is None:
            Image.new("RGB", (24, 20), (200, 30, 30)).save(folder / name)
        else:
            (folder / name).write_bytes(data)
