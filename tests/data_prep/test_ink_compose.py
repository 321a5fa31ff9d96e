"""Formulas composed from real handwritten symbols (``renderer: ink``): the symbol bank of the
bundled CROHME InkML fixtures, the layout of fractions, scripts and roots, seeded pixels, the clear
error for a symbol the bank lacks, and a small data build whose parquet shards HF datasets loads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from data_prep.readers import synthetic
from data_prep.readers.inkml import parse_inkml
from data_prep.rejects import Rejects
from data_prep.render.engine import RenderJob, render
from data_prep.render.ink_bank import BankError, SymbolBank
from data_prep.render.ink_layout import LayoutError, compose_formula
from data_prep.render.renderers import RenderError
from data_prep.render.style import RenderStyle

REPO = Path(__file__).resolve().parents[2]
BANK_DIR = "tests/fixtures/readers/inkml"
FIXTURES = {"KME1G3_2_sub_10.inkml", "MfrDB1843.inkml", "form_201_E1605.inkml"}
STYLE = RenderStyle(fontset="ink", font_size=20, stroke=0, padding=6, ink=20, paper=245)
BANK_SYMBOLS = ["2", "3", "4", "5", "a", "b", "x", "-", "="]


@pytest.fixture(scope="module")
def bank() -> SymbolBank:
    return SymbolBank.load(REPO / BANK_DIR)


def _piece(composition, token):
    return next(p for p in composition.symbols if p.token == token)


def _centre_y(box):
    return (box[1] + box[3]) / 2


def test_bank_collects_every_segmented_symbol_of_the_fixtures(bank):
    assert bank.counts() == {
        "(": 2, ")": 2, "-": 5, "2": 2, "3": 2, "4": 1, "5": 1, "=": 1, r"\int": 1, r"\log": 2,
        r"\sqrt": 1, "a": 1, "b": 1, "d": 1, "x": 4,
    }  # fmt: skip
    assert bank.files == 3 and not bank.skipped  # the outer "Segmentation" groups are not symbols
    # Each instance is the strokes its traceGroup links: the 2013-style x is two strokes.
    x = next(i for i in bank.instances["x"] if i.file == "MfrDB1843.inkml" and i.group == "26")
    document = parse_inkml(REPO / BANK_DIR / "MfrDB1843.inkml")
    assert x.strokes == (tuple(document.traces[5]), tuple(document.traces[6]))
    assert {i.file for label in bank.instances.values() for i in label} == FIXTURES


def test_bank_counts_malformed_groups_and_files_as_skips(tmp_path):
    (tmp_path / "bad.inkml").write_text("<ink><trace id='0'>1 2, oops</trace></ink>")
    (tmp_path / "groups.inkml").write_text(
        """<ink xmlns="http://www.w3.org/2003/InkML">
        <trace id="0">0 0, 10 10</trace><trace id="1">5 0, 5 10</trace>
        <traceGroup xml:id="9"><annotation type="truth">Segmentation</annotation>
          <traceGroup xml:id="10"><annotation type="truth">\\lt</annotation><traceView traceDataRef="0"/></traceGroup>
          <traceGroup xml:id="11"><traceView traceDataRef="1"/></traceGroup>
          <traceGroup xml:id="12"><annotation type="truth">x</annotation><traceView traceDataRef="7"/></traceGroup>
          <traceGroup xml:id="13"><annotation type="truth">x y</annotation><traceView traceDataRef="1"/></traceGroup>
          <traceGroup xml:id="14"><annotation type="truth">y</annotation></traceGroup>
        </traceGroup></ink>"""
    )
    loaded = SymbolBank.load(tmp_path)
    assert loaded.counts() == {"<": 1}  # CROHME's \lt is the answer format's <
    assert dict(loaded.skipped) == {
        "malformed_trace": 1, "no_label": 1, "unknown_trace": 1, "bad_label": 1, "no_strokes": 1,
    }  # fmt: skip
    assert any("traceGroup 12" in d and "'7'" in d for d in loaded.skip_details)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "plain.inkml").write_text("<ink><trace>0 0, 1 1</trace></ink>")
    with pytest.raises(BankError, match="no segmented symbols"):
        SymbolBank.load(empty)


def test_fraction_puts_numerator_above_a_bar_above_denominator(bank):
    for key in ("a", "b", "c"):
        composition = compose_formula(r"\frac { 3 } { 4 }", bank, 0, key)
        top, bar, bottom = (_piece(composition, t).box() for t in ("3", r"\frac", "4"))
        assert top[3] < bar[1] and bar[3] < bottom[1]  # y grows downwards
        assert bar[0] <= min(top[0], bottom[0]) and bar[2] >= max(top[2], bottom[2])  # spans both
        assert bar[3] - bar[1] < 0.2  # a bar keeps its small height
    # In the pixels: the longest ink row is the bar, with ink above and below it.
    pixels = np.asarray(render(r"\frac { 3 } { 4 }", STYLE, "ink", ink=composition))
    ink = pixels < (STYLE.ink + STYLE.paper) // 2
    rows = np.flatnonzero(ink.any(axis=1))
    spans = [np.ptp(np.flatnonzero(row)) if row.any() else 0 for row in ink]
    bar_row = int(np.argmax(spans))
    assert rows.min() < bar_row - 5 and rows.max() > bar_row + 5
    assert spans[bar_row] >= 0.9 * max(spans[r] for r in rows if abs(r - bar_row) > 3)


def test_scripts_are_smaller_and_raised_or_lowered(bank):
    for key in ("a", "b", "c", "d"):
        up = compose_formula(r"3 ^ { 2 }", bank, 1, key)
        base, sup = _piece(up, "3").box(), _piece(up, "2").box()
        assert sup[3] - sup[1] < 0.8 * (base[3] - base[1])
        assert _centre_y(sup) < _centre_y(base) and sup[1] < base[1]  # higher
        assert sup[0] > base[2] - 0.01  # after the base
        down = compose_formula(r"b _ { 2 }", bank, 1, key)
        base, sub = _piece(down, "b").box(), _piece(down, "2").box()
        assert sub[3] - sub[1] < 0.8 * (base[3] - base[1]) and _centre_y(sub) > _centre_y(base)
        both = compose_formula(r"x _ { 2 } ^ { 3 }", bank, 1, key)
        sub, sup = _piece(both, "2").box(), _piece(both, "3").box()
        assert sup[3] < sub[1]  # the superscript clears the subscript


def test_square_root_sign_is_left_of_and_above_its_radicand(bank):
    for key in ("a", "b", "c"):
        composition = compose_formula(r"\sqrt { x }", bank, 0, key)
        sign, x = _piece(composition, r"\sqrt").box(), _piece(composition, "x").box()
        assert sign[0] < x[0] and sign[1] < x[1]  # left of and above
        assert sign[2] >= x[2]  # the overline covers the radicand
        assert sign[3] >= x[3]  # the tick reaches down past it
    wide = compose_formula(r"\sqrt { 2 x - 3 }", bank, 0, "a")
    sign = _piece(wide, r"\sqrt").box()
    assert sign[2] >= max(p.box()[2] for p in wide.symbols if p.token != r"\sqrt")  # stretched


def test_same_seed_and_id_give_the_same_pixels_in_any_process(bank):
    latex = r"2 x - \frac { a } { 5 } = b ^ { 3 }"

    def pixels(seed, key):
        return np.asarray(RenderJob(latex, STYLE, "ink", None, compose_formula(latex, bank, seed, key))())

    first = pixels(0, "train-gen0-0000001-r0")
    assert np.array_equal(first, pixels(0, "train-gen0-0000001-r0"))
    differ = sum(not np.array_equal(first, pixels(0, f"train-gen0-{i:07d}-r0")) for i in range(2, 8))
    assert differ >= 5  # another record picks other instances and jitter
    assert not np.array_equal(first, pixels(1, "train-gen0-0000001-r0"))
    script = (
        "import hashlib, numpy as np\n"
        "from data_prep.render.ink_bank import SymbolBank\n"
        "from data_prep.render.ink_layout import compose_formula\n"
        "from data_prep.render.engine import RenderJob\n"
        "from data_prep.render.style import RenderStyle\n"
        f"style = RenderStyle(**{STYLE.to_meta()!r})\n"
        f"ink = compose_formula({latex!r}, SymbolBank.load({BANK_DIR!r}), 0, 'train-gen0-0000001-r0')\n"
        f"print(hashlib.sha1(np.asarray(RenderJob({latex!r}, style, 'ink', None, ink)()).tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == hashlib.sha1(first.tobytes()).hexdigest()


def test_canvas_clipping_and_augmentation_apply_as_for_mathtext(bank):
    latex = r"\frac { 2 a } { 3 } - x"
    ink = compose_formula(latex, bank, 0, "k")
    page = render(latex, STYLE, "ink", canvas=(168, 56), ink=ink)
    assert page.size == (168, 56)
    assert (np.asarray(page)[:, : STYLE.padding] == STYLE.paper).all()  # the left margin
    with pytest.raises(RenderError) as err:
        render(latex, STYLE, "ink", canvas=(40, 20), ink=ink)
    assert err.value.reason == "clipped"
    changed = 0
    for seed in range(4):
        augmented = RenderStyle(**{**STYLE.to_meta(), "augment_seed": seed})
        changed += not np.array_equal(np.asarray(render(latex, augmented, "ink", ink=ink)), np.asarray(page))
    assert changed >= 3
    with pytest.raises(RenderError, match="composed formula"):
        render(latex, STYLE, "ink")  # the ink renderer draws a composition, not bare LaTeX


def test_fit_draws_handwriting_as_large_as_the_page_allows(bank):
    latex = r"\frac { 2 a } { 3 }"
    ink = compose_formula(latex, bank, 0, "k")
    heights = []
    for fit in (1.0, 2.0):
        page = np.asarray(
            render(latex, dataclasses.replace(STYLE, font_size=12, fit=fit), "ink", canvas=(168, 56), ink=ink)
        )
        rows = np.nonzero((page < 128).any(axis=1))[0]
        heights.append(rows.max() - rows.min() + 1)
    assert heights[1] > 1.3 * heights[0] and heights[1] <= 54


def test_missing_symbols_fail_in_one_clear_line(bank, tmp_path):
    with pytest.raises(LayoutError, match=r"lacks \+ 7 y \(it has \( \) - 2 3") as err:
        compose_formula("y + 7 - 2", bank, 0, "k")
    assert err.value.reason == "unsupported"
    corpus = {"generator": {"symbols": ["2", "x", "7", r"\pi"], "p_frac": 0.2, "p_group": 0}, "count": 3}
    reader = synthetic.read(
        REPO, "train", Rejects(log=False), corpus=corpus, renderer="ink", ink_bank=BANK_DIR
    )
    with pytest.raises(ValueError) as err:
        next(reader)
    message = str(err.value)
    assert "\n" not in message
    assert r"symbol(s) 7 \pi that the ink bank" in message  # x, 2 and the bar's - are there
    assert "it has: ( ) - 2 3 4 5 = \\int \\log \\sqrt a b d x" in message
    # Another corpus: a formula that needs a missing symbol is a counted reject, the rest are drawn.
    (tmp_path / "f.txt").write_text("2 x\ny + 3\n\\frac { a } { b }\n")
    rejects = Rejects(log=False)
    records = list(
        synthetic.read(
            tmp_path, "train", rejects, corpus={"text_file": "f.txt"}, renderer="ink",
            ink_bank=str(REPO / BANK_DIR),
        )
    )  # fmt: skip
    assert [r.latex for r in records] == ["2 x", r"\frac { a } { b }"]
    assert rejects.counts[("synthetic", "render_unsupported")] == 1
    with pytest.raises(ValueError, match="needs 'ink_bank'"):
        next(synthetic.read(REPO, "train", Rejects(log=False), corpus=corpus, renderer="ink"))


def test_build_writes_composed_handwriting_that_datasets_loads(tmp_path):
    from data_prep.dataset import load_split

    formulas = {
        "symbols": BANK_SYMBOLS, "min_symbols": 1, "max_symbols": 4, "p_script": 0.3, "p_frac": 0.2,
        "p_sqrt": 0.15, "p_group": 0, "max_depth": 1,
    }  # fmt: skip
    recipe = {
        "output_dir": str(tmp_path / "out"),
        "max_reject_fraction": 0.5,
        "train": [
            {
                "name": "handwritten",
                "reader": "synthetic",
                "root": str(REPO),
                "split": "train",
                "options": {
                    "corpus": {"generator": formulas, "count": 12, "seed": 3},
                    "renderer": "ink",
                    "ink_bank": BANK_DIR,
                    "canvas": [168, 64],
                    "style": {"font_size": [14, 16], "padding": [2, 4], "augment": 0.3},
                    "seed": 5,
                },
            }
        ],
    }
    config = tmp_path / "ink.yaml"
    config.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "data_prep.build", "--config", str(config), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "out"
    assert list(out.rglob("*.parquet"))
    train = load_split(out, "train")
    report = json.loads((out / "report.json").read_text())
    split = report["splits"]["train"]
    assert len(train) >= 9 and split["rows"] + split["rejected_input"]["total"] == 12  # all accounted
    structures = set()
    for row in train:
        image = row["image"]
        assert image.size == (168, 64)
        pixels = np.asarray(image.convert("L"))
        assert pixels.min() < 100 and np.median(pixels) > 200  # dark handwriting on a light page
        meta = json.loads(row["meta"])
        assert meta["renderer"] == "ink" and meta["ink_bank"] == BANK_DIR
        assert meta["style"]["fontset"] == "ink"
        tokens = row["answer"].split()
        drawn = [s["token"] for s in meta["ink_symbols"]]
        assert sorted(drawn) == sorted(t for t in tokens if t not in ("{", "}", "^", "_"))
        for symbol in meta["ink_symbols"]:
            assert symbol["file"] in FIXTURES and symbol["group"]
            assert symbol["symbol"] == ("-" if symbol["token"] == r"\frac" else symbol["token"])
        structures |= {t for t in (r"\frac", r"\sqrt", "^", "_") if t in tokens}
    assert len(structures) >= 2  # the set holds structure, not just symbol strings


def test_an_output_folder_inside_the_ink_bank_is_refused(tmp_path):
    from data_prep.build.recipe import RecipeError, parse_recipe
    from data_prep.build.safety import check_output_dir

    generator = {"generator": {"symbols": ["2", "3"], "max_symbols": 2}, "count": 2}
    spec = {
        "name": "handwritten",
        "reader": "synthetic",
        "root": str(tmp_path),
        "split": "train",
        "options": {"corpus": generator, "renderer": "ink", "ink_bank": "bank"},
    }
    recipe = parse_recipe({"output_dir": str(tmp_path / "out"), "train": [spec]})
    check_output_dir(tmp_path / "out", recipe)  # beside the bank: fine
    with pytest.raises(RecipeError, match=r"source 'handwritten' \(ink_bank\)"):
        check_output_dir(tmp_path / "bank" / "out", recipe)
