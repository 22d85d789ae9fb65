"""Take a data directory's writer lock and keep it until stdin closes (or we are killed).

Usage: ``python lock_holder.py DATA_DIR``. Prints ``locked <pid>`` once it holds the lock,
or ``refused`` if another process holds it (then exits 0).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bedside.common.clock import SystemClock
from bedside.common.errors import LockedError
from bedside.store.storage import DataDir


def main() -> int:
    """Hold the lock until stdin reaches end of file."""
    dd = DataDir(Path(sys.argv[1]), clock=SystemClock())
    if len(sys.argv) > 2:  # wait for a "go" line so several holders start together
        sys.stdin.readline()
    try:
        dd.acquire_writer_lock()
    except LockedError:
        print("refused", flush=True)
        return 0
    print(f"locked {os.getpid()}", flush=True)
    sys.stdin.read()
    dd.release_writer_lock()
    return 0


if __name__ == "__main__":
    sys.exit(main())
