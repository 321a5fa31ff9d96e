"""How alike InkML renders and the official CROHME bitmaps are (tunes :class:`RenderOptions`):

python -m data_prep.render.inkml_compare --compare INKML_DIR BMP_DIR [--per-file] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from data_prep.io_utils import write_json_atomic
from data_prep.readers.inkml import InkmlError, parse_inkml
from data_prep.render.inkml import DEFAULT_RENDER, RenderOptions, render_traces

logger = logging.getLogger(__name__)


def _ink_mask(image: Image.Image) -> np.ndarray:
    """Boolean ink mask of either polarity (ink is the minority of pixels)."""
    gray = np.asarray(image.convert("L"))
    dark = gray < 128
    return dark if dark.mean() < 0.5 else ~dark


def _crop(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def compare_masks(rendered: Image.Image, official: Image.Image) -> dict[str, float]:
    """How alike two formula images are.

    ``iou``: intersection over union of the ink masks after cropping both to their ink bounding
    boxes and resizing the render's box onto the official one (nearest neighbour);
    ``width_ratio`` / ``height_ratio``: render size over official size;
    ``ink_ratio``: render ink fraction over official ink fraction (stroke thickness).
    """
    ours, theirs = _ink_mask(rendered), _ink_mask(official)
    if not ours.any() or not theirs.any():
        raise ValueError("an image has no ink")
    ours_box, theirs_box = _crop(ours), _crop(theirs)
    resized = Image.fromarray(ours_box).resize(
        (theirs_box.shape[1], theirs_box.shape[0]), Image.Resampling.NEAREST
    )
    aligned = np.asarray(resized)
    union = np.logical_or(aligned, theirs_box).sum()
    return {
        "iou": float(np.logical_and(aligned, theirs_box).sum() / union),
        "width_ratio": rendered.width / official.width,
        "height_ratio": rendered.height / official.height,
        "ink_ratio": float(ours.mean() / theirs.mean()),
    }


def compare_dirs(inkml_dir: Path, bmp_dir: Path, options: RenderOptions = DEFAULT_RENDER) -> dict:
    """Render every InkML file that has an official bitmap (``NAME_0.bmp`` or ``NAME.bmp``)."""
    rows = []
    for inkml in sorted(Path(inkml_dir).glob("*.inkml")):
        bitmap = next(
            (p for p in (bmp_dir / f"{inkml.stem}_0.bmp", bmp_dir / f"{inkml.stem}.bmp") if p.is_file()), None
        )
        if bitmap is None:
            continue
        try:
            document = parse_inkml(inkml)
        except InkmlError as err:
            logger.warning("skipped %s: %s", inkml, err)
            continue
        with Image.open(bitmap) as official:
            scores = compare_masks(render_traces(document.traces, options), official)
        rows.append({"name": inkml.stem, **scores})
    if not rows:
        raise FileNotFoundError(f"no InkML file in {inkml_dir} has a bitmap in {bmp_dir}")

    def summary(key: str) -> dict[str, float]:
        values = [r[key] for r in rows]
        return {
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }

    return {
        "files": len(rows),
        "options": dataclasses.asdict(options),
        **{key: summary(key) for key in ("iou", "width_ratio", "height_ratio", "ink_ratio")},
        "per_file": rows,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.render.inkml_compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--compare", nargs=2, metavar=("INKML_DIR", "BMP_DIR"), required=True)
    parser.add_argument("--stroke-height", type=float, default=DEFAULT_RENDER.stroke_height)
    parser.add_argument("--line-width", type=int, default=DEFAULT_RENDER.line_width)
    parser.add_argument("--padding", type=int, default=DEFAULT_RENDER.padding)
    parser.add_argument("--antialias", action="store_true")
    parser.add_argument("--per-file", action="store_true", help="print one line per file too")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = RenderOptions(
        stroke_height=args.stroke_height,
        line_width=args.line_width,
        padding=args.padding,
        antialias=args.antialias,
    )
    report = compare_dirs(Path(args.compare[0]), Path(args.compare[1]), options)
    if args.per_file:
        for row in report["per_file"]:
            print(
                f"{row['name']:<16} IoU {row['iou']:.3f}  width x{row['width_ratio']:.2f}  "
                f"height x{row['height_ratio']:.2f}  ink x{row['ink_ratio']:.2f}"
            )
    print(f"{report['files']} files rendered with {report['options']}")
    for key in ("iou", "width_ratio", "height_ratio", "ink_ratio"):
        s = report[key]
        print(
            f"  {key:<13} mean {s['mean']:.3f}  median {s['median']:.3f}  min {s['min']:.3f}  max {s['max']:.3f}"
        )
    if args.json:
        write_json_atomic(args.json, report, indent=2)


if __name__ == "__main__":
    main()
