"""The same figures on every x86-64 machine: pin the CPU kernels' instruction set.

With one thread, a CPU training run is deterministic on one machine, but torch (ATen), MKL and
oneDNN pick their kernels by the CPU's instruction set, and AVX-512 kernels add floats in another
order than AVX2 ones: the same seed then trains other weights, and the demo's held-out ExpRate moves
by several points between machines (measured in BENCHMARKS.md: on this AVX2 machine,
``ATEN_CPU_CAPABILITY=default`` or ``MKL_CBWR=COMPATIBLE`` each train different weights from the
same 60 steps, while the AVX2 caps below leave them bit-identical). Capping all three at AVX2, the
level every x86-64 machine of the last decade has, makes an AVX-512 machine take the AVX2 paths.

Set before torch is imported (the libraries read them once, when they load).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The instruction-set caps, as environment variables.
AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def cpu_has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def pin_cpu_kernels() -> dict[str, str]:
    """Set :data:`AVX2_CAPS` (a value the user set wins) on an x86-64 CPU with AVX2; returns what
    is in effect. Too late once torch is imported: then nothing is set and a warning says so."""
    if not cpu_has_avx2():
        return {}
    if "torch" in sys.modules:
        print("warning: torch is already loaded; the CPU kernels are not pinned to AVX2")
        return {}
    for key, value in AVX2_CAPS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in AVX2_CAPS}
