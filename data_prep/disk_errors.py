"""One line for the storage errors a writer cannot fix itself: a full disk, a read-only folder.

    try:
        ...  # write into out_dir
    except OSError as err:
        if not is_storage_error(err):
            raise
        print(f"evaluation failed: {storage_error_line(err, out_dir)}", file=sys.stderr)

Every writer stages its files (``io_utils.atomic_output`` / ``atomic_directory``), so a write that
fails half way leaves nothing half-written; what the user needs is which folder and what to do.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: errno -> what to do about it.
STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full: free some space or choose an output folder on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space or choose an output folder elsewhere",
    errno.EROFS: "the storage is read-only: choose a writable output folder",
    errno.EACCES: "no permission to write there: choose a writable output folder",
    errno.EPERM: "no permission to write there: choose a writable output folder",
}


def is_storage_error(err: BaseException) -> bool:
    """A full disk, a quota, or a read-only / unwritable place (not a missing input file)."""
    return isinstance(err, OSError) and err.errno in STORAGE_ERRNOS


def storage_error_line(err: OSError, output: str | Path | None = None) -> str:
    """``cannot write <file> (No space left on device): the disk is full: ...``, one line."""
    where = err.filename or output or "the output folder"
    reason = err.strerror or os.strerror(err.errno or 0)
    advice = STORAGE_ERRNOS.get(err.errno or 0, "check the output folder")
    tail = f" (output folder {output})" if output and str(output) not in str(where) else ""
    # A permission error may come from a read as well as a write: do not claim which.
    verb = "cannot access" if err.errno in (errno.EACCES, errno.EPERM) else "cannot write"
    return f"{verb} {where}{tail}: {reason}; {advice}; nothing half-written was kept"


__all__ = ["STORAGE_ERRNOS", "is_storage_error", "storage_error_line"]
