"""KaTeX, pinned and kept on disk, so an HTML report typesets its formulas with no network.

    python -m eval.katex_assets fetch        # what `make install` runs: npm pack katex@VERSION

The npm tarball of :data:`KATEX_VERSION` is fetched with ``npm pack`` (the registry's ordinary
client), checked against the pinned :data:`KATEX_INTEGRITY` and unpacked into ``vendor/katex/``
(ignored by git). :func:`load_katex` reads ``katex.min.js`` and ``katex.min.css`` from there with
every font inlined as a ``data:`` URI (woff2 only: every browser that runs KaTeX reads it), so a
report that embeds them opens from disk. ``HMER_KATEX_DIR`` points elsewhere (a folder holding
``package.json`` and ``dist/``).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

KATEX_VERSION = "0.19.1"
#: The registry's ``dist.integrity`` of katex-0.19.1.tgz (``npm view katex@0.19.1 dist.integrity``).
KATEX_INTEGRITY = (
    "sha512-jG8uKntjSEcm2EpQOh0XturpPuuC9r3Sq5HLHdsFdWZT27E672SF19QEi+of0/YeOy15lDgRhKvr5614uRrEfA=="
)
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "vendor" / "katex"


class KatexMissing(RuntimeError):
    """KaTeX is not on disk (or is another version than the pinned one)."""


@dataclasses.dataclass(frozen=True)
class KatexAssets:
    version: str
    js: str
    #: The stylesheet with its fonts as ``data:`` URIs.
    css: str


def katex_dir() -> Path:
    return Path(os.environ.get("HMER_KATEX_DIR") or DEFAULT_DIR)


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch(dest: Path | None = None, version: str = KATEX_VERSION, integrity: str = KATEX_INTEGRITY) -> Path:
    """Fetch katex@version with ``npm pack``, verify it, unpack it into ``dest``; returns ``dest``."""
    dest = Path(dest or katex_dir())
    npm = shutil.which("npm")
    if npm is None:
        raise KatexMissing("npm is not installed (Debian: apt-get install -y npm); it fetches KaTeX")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [npm, "pack", f"katex@{version}", "--silent", "--pack-destination", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tarball = Path(tmp) / f"katex-{version}.tgz"
        data = tarball.read_bytes()
        if _integrity(data) != integrity:
            raise KatexMissing(f"katex-{version}.tgz does not match the pinned integrity {integrity}")
        staging = Path(tmp) / "unpacked"
        with tarfile.open(tarball) as archive:
            archive.extractall(staging, filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        shutil.move(str(staging / "package"), dest)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def installed_version(root: Path | None = None) -> str | None:
    package = Path(root or katex_dir()) / "package.json"
    try:
        return json.loads(package.read_text(encoding="utf-8")).get("version")
    except (OSError, json.JSONDecodeError):
        return None


def _inline_fonts(css: str, fonts_dir: Path) -> str:
    """Replace each ``@font-face`` ``src`` by its woff2 file as a ``data:`` URI."""

    def font_face(match: re.Match[str]) -> str:
        block = match.group(0)
        woff2 = re.search(r"url\((?:fonts/)?([^)]+?\.woff2)\)", block)
        if woff2 is None:
            return block
        data = base64.b64encode((fonts_dir / woff2.group(1)).read_bytes()).decode("ascii")
        return re.sub(r"src:[^;}]*", f'src:url(data:font/woff2;base64,{data}) format("woff2")', block)

    return re.sub(r"@font-face\{[^}]*\}", font_face, css)


def load_katex(root: Path | None = None) -> KatexAssets:
    """The pinned KaTeX's script and self-contained stylesheet; :class:`KatexMissing` when absent."""
    root = Path(root or katex_dir())
    version = installed_version(root)
    if version is None:
        raise KatexMissing(
            f"KaTeX not found in {root}: run `make install` (or python -m eval.katex_assets fetch)"
        )
    if version != KATEX_VERSION:
        raise KatexMissing(
            f"{root} holds KaTeX {version}, the project pins {KATEX_VERSION}: run `make install`"
        )
    dist = root / "dist"
    css = _inline_fonts((dist / "katex.min.css").read_text(encoding="utf-8"), dist / "fonts")
    return KatexAssets(version=version, js=(dist / "katex.min.js").read_text(encoding="utf-8"), css=css)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.katex_assets", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("fetch", "check"))
    parser.add_argument("--dest", type=Path, default=None, help=f"default {DEFAULT_DIR} (or HMER_KATEX_DIR)")
    args = parser.parse_args(argv)
    dest = args.dest or katex_dir()
    try:
        if args.command == "fetch":
            if installed_version(dest) == KATEX_VERSION:
                print(f"KaTeX {KATEX_VERSION} already in {dest}")
                return 0
            fetch(dest)
        load_katex(dest)
    except (KatexMissing, subprocess.CalledProcessError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"KaTeX {KATEX_VERSION} in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
