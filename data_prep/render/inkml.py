"""Render online handwriting (InkML strokes) into offline images like the CROHME bitmaps.

The official CROHME offline bitmaps (WAP/CoMER lineage) are binary, ink 1-3 px wide, with a
12 px margin, and scaled so that strokes keep a similar size whatever the tablet's resolution:
across the 2014 test set the mean stroke height is about 22-23 px (18-29) while the raw coordinate
scales differ by 10x. :func:`render_traces` reproduces that: scale so the mean stroke height is
``stroke_height`` pixels, draw polylines ``line_width`` wide, pad ``padding`` pixels.
``--compare`` measures how alike renders and official bitmaps are:

    python -m data_prep.render.inkml --compare INKML_DIR BMP_DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from data_prep.io_utils import write_json_atomic

logger = logging.getLogger(__name__)

Trace = Sequence[tuple[float, float]]


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """How strokes become pixels (defaults tuned against the CROHME 2014 official bitmaps)."""

    #: Mean stroke height after scaling, in pixels.
    stroke_height: float = 22.0
    #: Polyline width in pixels.
    line_width: int = 3
    #: White margin on each side, in pixels.
    padding: int = 12
    #: Draw at 4x and downsample (grey edges) instead of binary ink like the official bitmaps.
    antialias: bool = False
    #: Longest side allowed (after padding); larger renders are scaled down to fit.
    max_side: int = 2048


DEFAULT_RENDER = RenderOptions()


def _scale_for(traces: Sequence[Trace], options: RenderOptions) -> float:
    heights = [max(p[1] for p in t) - min(p[1] for p in t) for t in traces]
    mean_height = statistics.fmean(heights)
    xs = [p[0] for t in traces for p in t]
    ys = [p[1] for t in traces for p in t]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    if mean_height <= 0:
        # Only dots or perfectly flat strokes: fall back to the whole extent.
        mean_height = extent or 1.0
    scale = options.stroke_height / mean_height
    room = options.max_side - 2 * options.padding - options.line_width - 2  # the +1 and rounding below
    if extent * scale > room:
        scale = room / extent
    return scale


def render_traces(traces: Sequence[Trace], options: RenderOptions = DEFAULT_RENDER) -> Image.Image:
    """A mode ``L`` image of the strokes: black ink on white.

    Raises ``ValueError`` when there is nothing to draw.
    """
    traces = [t for t in traces if len(t)]
    if not traces:
        raise ValueError("no strokes to render")
    scale = _scale_for(traces, options)
    min_x = min(p[0] for t in traces for p in t)
    min_y = min(p[1] for t in traces for p in t)
    max_x = max(p[0] for t in traces for p in t)
    max_y = max(p[1] for t in traces for p in t)
    factor = 4 if options.antialias else 1
    half = options.line_width / 2
    offset = options.padding + half
    width = math.ceil((max_x - min_x) * scale + 2 * offset) + 1
    height = math.ceil((max_y - min_y) * scale + 2 * offset) + 1
    canvas = Image.new("L", (width * factor, height * factor), 255)
    draw = ImageDraw.Draw(canvas)
    line_width = max(1, round(options.line_width * factor))
    for trace in traces:
        points = [
            ((x - min_x) * scale * factor + offset * factor, (y - min_y) * scale * factor + offset * factor)
            for x, y in trace
        ]
        if len(points) == 1 or all(p == points[0] for p in points):
            x, y = points[0]
            r = max(line_width / 2, 0.5)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
        else:
            draw.line(points, fill=0, width=line_width, joint="curve")
    if factor > 1:
        canvas = canvas.resize((width, height), Image.Resampling.BOX)
    return canvas


# --------------------------------------------------------------------------- #
# Comparison with official bitmaps
# --------------------------------------------------------------------------- #


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
    from data_prep.readers.inkml import InkmlError, parse_inkml  # local: avoids an import cycle

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
