"""One writer per output folder: an exclusive lock that a second writer is refused by, in one line.

    with output_lock(out_dir, what="evaluation"):
        ...  # write into out_dir

The lock is a ``filelock`` lock (``flock`` on POSIX) on a hidden file *beside* the folder,
``<parent>/.<name>.lock``: beside rather than inside, because some writers replace their whole
folder (an export staged in ``atomic_directory``) or delete their own earlier files. The kernel drops
an ``flock`` when its process ends, however it ends (SIGKILL included), so a dead writer never
leaves the folder locked. Who holds it (pid, command, host, start time, what it is doing) is
written next to the lock, ``<parent>/.<name>.lock.json``, for the refusal message; a stale one
left by a killed writer is simply overwritten by the next.

Multi-process training takes the lock on the main process only (the others write nothing alone).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.io_utils import write_json_atomic

HOLDER_SUFFIX = ".json"


class OutputLocked(RuntimeError):
    """Another process is writing into the same output folder."""


def lock_path(folder: str | Path) -> Path:
    """``<parent>/.<name>.lock`` of ``folder`` (symlinks resolved, so two spellings of one folder
    share one lock)."""
    real = Path(os.path.realpath(folder))
    return real.parent / f".{real.name}.lock"


def _holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + HOLDER_SUFFIX)


def read_holder(folder: str | Path) -> dict[str, Any] | None:
    """What the last holder of ``folder``'s lock wrote about itself (None when nothing readable)."""
    try:
        holder = json.loads(_holder_path(lock_path(folder)).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (it wrote nothing about itself yet)"
    command = " ".join(str(part) for part in holder.get("command") or [])
    if len(command) > 120:
        command = command[:117] + "..."
    return (
        f"{holder.get('what') or 'a writer'} pid {holder.get('pid')} on {holder.get('host')} "
        f"(`{command}`, started {holder.get('started')})"
    )


@contextlib.contextmanager
def output_lock(folder: str | Path, what: str = "writer", wait: bool = False) -> Iterator[Path]:
    """Hold ``folder``'s exclusive lock for the block; :class:`OutputLocked` (one line naming the
    holder) when another process holds it, or, with ``wait``, say who holds it and wait for it.
    Yields the lock file's path.

    Not re-entrant within a process: nest it and the inner call is refused like any other writer.
    """
    from filelock import FileLock, Timeout

    lock = lock_path(folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    # No soft fallback: a soft lock (a file that exists) would outlive a SIGKILLed holder.
    file_lock = FileLock(str(lock), timeout=0, thread_local=False, fallback_to_soft=False)
    try:
        file_lock.acquire()
    except Timeout:
        holder = describe_holder(read_holder(folder))
        if not wait:
            raise OutputLocked(
                f"{folder} is in use by {holder}: one {what} at a time per "
                "output folder; wait for it to finish or give another output folder"
            ) from None
        print(f"waiting: {folder} is in use by {holder}", file=sys.stderr, flush=True)
        file_lock.acquire(timeout=-1)
    try:
        holder = {
            "what": what,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": list(sys.argv) or [sys.executable],
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json_atomic(_holder_path(lock), holder)
        yield lock
    finally:
        with contextlib.suppress(OSError):
            _holder_path(lock).unlink()
        file_lock.release()


__all__ = ["OutputLocked", "describe_holder", "lock_path", "output_lock", "read_holder"]
