"""The folder lock, held by a real second process."""
import subprocess
import sys
import textwrap

import pytest

from gcahng.errors import InputError
from gcahng.locking import folder_lock

HOLD = textwrap.dedent("""
    import sys, time
    from gcahng.locking import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_process_is_refused_and_kill_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=rf"{tmp_path / 'run'} is in use by process {holder.pid}"):
            with folder_lock(tmp_path / "run"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(tmp_path / "run"):  # kill -9 released it
        pass


def test_only_rank_zero_takes_the_lock(tmp_path):
    with folder_lock(tmp_path, rank=1):
        assert not (tmp_path / ".gcahng.lock").exists()
