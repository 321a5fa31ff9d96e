"""What the browser and app tests need that a machine may lack: skipped outside CI, saying why;
a failure in CI (``CI=true``), where ``.ci/run`` installs chromium and the app environment and
``make test`` fetches KaTeX."""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI") == "true"


def require(available: bool, reason: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(
            f"{reason} (CI must have it: .ci/run installs chromium and the app environment, make test fetches KaTeX)"
        )
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
