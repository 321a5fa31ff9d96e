"""Train/test overlap: the same image, a near copy of it, or the same formula.

Three signals, checked between every training record and every test set:

* **exact image**: SHA-1 of the decoded grey pixels and the size, so a PNG and a BMP of the same
  bitmap match, and so do an RGB and a grey copy;
* **perceptual image**: a 256-bit difference hash (dHash: 17x16 grey thumbnail, one bit per
  horizontal neighbour pair) within ``perceptual_max_distance`` bits. Images are compared as the
  readers give them (ink on a light background: CROHME bitmaps are already inverted). On the 986 CROHME 2014 test bitmaps the closest
  pair of *different* images is 25 bits apart, while a 0.6x resize plus JPEG at quality 70 moves a
  hash by a median of 9 bits: the default of 12 separates the two;
* **formula**: the normalised LaTeX of the answer (tokens re-spaced; ``\\limits``-style no-op
  tokens dropped so the CROHME caption editions agree).

Policy (``contamination`` in the data recipe): an image match excludes the training record by
default (reason ``contaminated_image``); a formula match alone is only reported by default (short
formulas such as ``x ^ { 2 }`` legitimately recur across writers), and excludes with
``formula: exclude`` (reason ``contaminated_formula``).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from PIL import Image

#: Thumbnail height of the difference hash; the hash has HASH_SIZE * HASH_SIZE bits.
HASH_SIZE = 16
HASH_BITS = HASH_SIZE * HASH_SIZE
#: Tokens that change no rendering difference between caption editions.
NOOP_TOKENS = frozenset({"\\limits", "\\nolimits", "\\displaystyle", "\\textstyle"})

KIND_EXACT = "exact_image"
KIND_PERCEPTUAL = "perceptual_image"
KIND_FORMULA = "formula"


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What the contamination check keeps of an image: its pixel hash and its dHash."""

    exact: str
    perceptual: bytes

    def to_json(self) -> list[str]:
        return [self.exact, self.perceptual.hex()]

    @classmethod
    def from_json(cls, value: list[str]) -> Fingerprint:
        return cls(value[0], bytes.fromhex(value[1]))


def difference_hash(image: Image.Image, size: int = HASH_SIZE) -> bytes:
    """dHash: grey ``(size + 1) x size`` thumbnail, bit set where a pixel is brighter than its left."""
    thumb = image.convert("L").resize((size + 1, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(thumb, dtype=np.int16)
    return np.packbits(pixels[:, 1:] > pixels[:, :-1]).tobytes()


def fingerprint(image: Image.Image) -> Fingerprint:
    grey = image.convert("L")
    digest = hashlib.sha1(f"{grey.width}x{grey.height}:".encode())
    digest.update(grey.tobytes())
    return Fingerprint(digest.hexdigest(), difference_hash(grey))


def hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def normalize_formula(latex: str) -> str:
    """Whitespace-split tokens without no-op tokens, re-joined by single spaces."""
    return " ".join(token for token in latex.split() if token not in NOOP_TOKENS)


@dataclasses.dataclass(frozen=True)
class Match:
    """A training record's overlap with one test record."""

    kind: str
    test_set: str
    test_id: str
    distance: int = 0

    def describe(self) -> str:
        extra = f", {self.distance} bits apart" if self.kind == KIND_PERCEPTUAL else ""
        return f"{self.kind} of {self.test_set}/{self.test_id}{extra}"


class ContaminationIndex:
    """Fingerprints and formulas of every test record, queried for each training record."""

    def __init__(self, perceptual_max_distance: int = 12) -> None:
        if not 0 <= perceptual_max_distance < HASH_BITS // 2:
            raise ValueError(f"perceptual_max_distance must be in [0, {HASH_BITS // 2})")
        self.perceptual_max_distance = perceptual_max_distance
        self._keys: list[tuple[str, str]] = []
        self._exact: dict[str, int] = {}
        self._formulas: dict[str, int] = {}
        self._hashes: list[bytes] = []
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, test_set: str, record_id: str, print_: Fingerprint, formula: str) -> None:
        position = len(self._keys)
        self._keys.append((test_set, record_id))
        self._exact.setdefault(print_.exact, position)
        self._formulas.setdefault(normalize_formula(formula), position)
        self._hashes.append(print_.perceptual)
        self._matrix = None

    def _hash_matrix(self) -> np.ndarray:
        if self._matrix is None:
            # One row of 64-bit words per test image: XOR + popcount over all rows at once.
            raw = np.frombuffer(b"".join(self._hashes), dtype=np.uint8)
            self._matrix = raw.reshape(len(self._hashes), -1).view(np.uint64)
        return self._matrix

    def image_match(self, print_: Fingerprint) -> Match | None:
        """The exact match, else the closest perceptual match within the distance limit."""
        if print_.exact in self._exact:
            return Match(KIND_EXACT, *self._keys[self._exact[print_.exact]])
        if not self._hashes:
            return None
        query = np.frombuffer(print_.perceptual, dtype=np.uint8).view(np.uint64)
        distances = np.bitwise_count(self._hash_matrix() ^ query).sum(axis=1)
        best = int(distances.argmin())
        if distances[best] <= self.perceptual_max_distance:
            return Match(KIND_PERCEPTUAL, *self._keys[best], distance=int(distances[best]))
        return None

    def formula_match(self, formula: str) -> Match | None:
        position = self._formulas.get(normalize_formula(formula))
        return None if position is None else Match(KIND_FORMULA, *self._keys[position])
