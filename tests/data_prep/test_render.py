"""The rendering engine (data_prep/render) and the `synthetic` source: formulas in, checked images
of dark ink on a light page out, failures counted with their reason, test formulas held back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.dataset import load_split
from data_prep.latex import tokenize_latex
from data_prep.readers.synthetic import read as read_synthetic
from data_prep.rejects import Rejects
from data_prep.render.corpus import iter_corpus
from data_prep.render.engine import RenderJob, render
from data_prep.render.generator import CROHME_SYMBOLS, FormulaGenerator, GeneratorSpec, symbol_set
from data_prep.render.renderers import RenderError, available_renderers, compact
from data_prep.render.style import RenderStyle, StyleSpace
from data_prep.tasks import build_tree_cot, count_symbols

STYLE = RenderStyle(fontset="dejavusans", font_size=20, stroke=0, padding=6, ink=20, paper=245)


def test_generator_is_deterministic_per_index_and_bounded():
    spec = GeneratorSpec(max_symbols=8, p_script=0.3, p_frac=0.2, p_sqrt=0.1, p_group=0.1)
    a, b = FormulaGenerator(spec, seed=3), FormulaGenerator(spec, seed=3)
    assert [a.formula(i) for i in range(50)] == [b.formula(i) for i in reversed(range(50))][::-1]
    assert a.formula(7) != FormulaGenerator(spec, seed=4).formula(7)
    structure = {"{", "}", "^", "_", r"\frac", r"\sqrt", "(", ")", "[", "]", r"\{", r"\}"}
    for i in range(200):
        tokens = a.formula(i).split()
        assert 1 <= sum(t not in structure for t in tokens) <= 8 + 2  # brackets count in the budget


def test_generated_formulas_tokenise_and_derive_tree_cot_and_counting():
    generator = FormulaGenerator(GeneratorSpec(max_symbols=10, p_script=0.3, p_frac=0.2, p_sqrt=0.1), seed=11)
    kinds = set()
    for i in range(300):
        latex = generator.formula(i)
        assert tokenize_latex(latex) == latex  # already in the answer format
        tree = build_tree_cot(latex)
        assert tree.splitlines()[-1] == latex
        counts = count_symbols(latex)
        assert counts.splitlines()[-1] == latex
        kinds |= {t for t in (r"\frac", r"\sqrt", "^", "_") if t in latex.split()}
    assert kinds == {r"\frac", r"\sqrt", "^", "_"}  # structures are exercised, not just symbols


def test_symbol_sets_and_bad_specs_fail_clearly():
    assert symbol_set("digits+operators")[:10] == tuple("0123456789")
    assert set(symbol_set("crohme")) == set(CROHME_SYMBOLS)
    with pytest.raises(ValueError, match="unknown symbol set"):
        symbol_set("emoji")
    with pytest.raises(ValueError, match="unknown generator option"):
        GeneratorSpec.from_options({"lenght": 3})


def test_compact_keeps_scripts_attached():
    assert compact(r"x ^ { 2 } + \sin x _ { 1 }") == r"x^{2}+\sin x_{1}"


def test_render_is_dark_on_light_and_fails_with_reasons():
    image = render(r"\frac { a } { b } + x ^ { 2 }", STYLE)
    pixels = np.asarray(image)
    assert image.mode == "L" and pixels.min() < 60 and np.median(pixels) > 200
    assert render(r"\int \limits _ { 0 } ^ { 1 } x", STYLE).size  # CROHME's \limits is drawable
    with pytest.raises(RenderError) as err:
        render(r"\begin {array} { l } x \end {array}", STYLE)
    assert err.value.reason == "unsupported"
    with pytest.raises(RenderError) as err:
        render(r"x + y + z", STYLE, canvas=(20, 20))
    assert err.value.reason == "clipped"
    with pytest.raises(RenderError) as err:
        render(r"\,", STYLE)  # a space draws no ink
    assert err.value.reason == "blank"


def test_styles_and_augmentation_are_seeded():
    space = StyleSpace(augment=1.0)
    style = space.sample(5, "item-1")
    assert style == space.sample(5, "item-1") and style.augment_seed is not None
    one = np.asarray(RenderJob("a + b = c", style)())
    two = np.asarray(RenderJob("a + b = c", style)())
    assert np.array_equal(one, two)
    changed = 0
    for key in range(8):
        look = space.sample(5, f"item-{key}")
        plain = RenderStyle(**{**look.to_meta(), "augment_seed": None})
        changed += not np.array_equal(
            np.asarray(render("a + b = c", look)), np.asarray(render("a + b = c", plain))
        )
    assert changed >= 4  # the augmentation changes the pixels of most renderings
    with pytest.raises(ValueError, match="dark"):
        StyleSpace(ink=(0, 200))


def test_available_renderers_say_why_not():
    found = available_renderers()
    assert found["mathtext"][0] is True
    ok, why = found["latex"]
    assert ok or "PATH" in why


def test_corpora_from_files(tmp_path):
    (tmp_path / "caption.txt").write_text("a\tx ^ { 2 }\nb\t\\frac { 1 } { 2 }\n")
    (tmp_path / "formulas.lst").write_text("x^2\n\n\\frac{1}{2\n\\sqrt{x}\n")
    (tmp_path / "plain.txt").write_text("a+b\n")
    rejects = Rejects(log=False)
    captions = list(iter_corpus({"caption_file": "caption.txt"}, tmp_path, "s", rejects))
    assert captions == [("a", "x ^ { 2 }"), ("b", r"\frac { 1 } { 2 }")]
    im2latex = list(iter_corpus({"im2latex_formulas": "formulas.lst"}, tmp_path, "s", rejects))
    assert im2latex == [("im2latex-0", "x ^ { 2 }"), ("im2latex-3", r"\sqrt { x }")]  # ids keep line indexes
    assert rejects.counts[("s", "latex_error")] == 1  # the unbalanced formula, counted
    assert list(iter_corpus({"text_file": "plain.txt"}, tmp_path, "s", rejects)) == [("line1", "a + b")]


def _synthetic(split, seed, count, symbols, **extra):
    return {
        "reader": "synthetic",
        "root": ".",
        "split": split,
        "options": {
            "corpus": {
                "generator": {"symbols": symbols, "min_symbols": 1, "max_symbols": 2, "p_script": 0, "p_frac": 0,
                              "p_sqrt": 0, "p_group": 0},
                "count": count,
                "seed": seed,
            },
            "renderings": 2,
            "style": {"fontsets": ["cm"], "font_size": 18, "augment": 0},
            "seed": seed,
            **extra,
        },
    }  # fmt: skip


def test_synthetic_source_holds_back_test_formulas_and_is_seeded(tmp_path):
    symbols = ["1", "2", "+"]
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "contamination": {"image": "report", "formula": "report"},
            "test_sets": [{"name": "heldout", **_synthetic("heldout", 2, 4, symbols)}],
            "train": [{"name": "rendered", **_synthetic("train", 1, 30, symbols)}],
        }
    )
    out = build_dataset(recipe, progress=False, num_proc=2)
    test = load_split(out, "heldout")
    train = load_split(out, "train")
    test_formulas = set(test["answer"])
    assert test_formulas and not test_formulas & set(train["answer"])  # never rendered into training
    report = json.loads((out / "report.json").read_text())
    held_back = report["contamination"]["rendered_held_back"]
    assert held_back > 0 and len(train) + held_back == 60  # 30 formulas x 2 renderings, all accounted for
    assert "held back from training" in (out / "report.md").read_text()
    meta = json.loads(train[0]["meta"])
    assert meta["rendered"] and meta["renderer"] == "mathtext" and meta["style"]["fontset"] == "cm"
    from_dataset = list(
        iter_corpus({"dataset": str(out), "split": "heldout"}, tmp_path, "s", Rejects(log=False))
    )
    assert sorted(latex for _, latex in from_dataset) == sorted(test["answer"])  # a built set's answers
    first = np.asarray(train[0]["image"])
    again = build_dataset(recipe, progress=False, fresh=True)
    assert np.array_equal(np.asarray(load_split(again, "train")[0]["image"]), first)  # seeded


def test_synthetic_render_failures_are_counted_with_reason(tmp_path):
    corpus = tmp_path / "corpus"  # a source folder of its own: the build refuses output inside a source
    corpus.mkdir()
    (corpus / "f.txt").write_text("a + b\n\\begin{array}{l} x \\end{array}\nc\n")
    recipe = parse_recipe(
        {
            "output_dir": str(tmp_path / "out"),
            "max_reject_fraction": 0.5,
            "train": [
                {
                    "name": "rendered",
                    "reader": "synthetic",
                    "root": str(corpus),
                    "split": "train",
                    "options": {"corpus": {"text_file": "f.txt"}, "style": {"augment": 0}},
                }
            ],
        }
    )
    out = build_dataset(recipe, progress=False)
    assert sorted(load_split(out, "train")["answer"]) == ["a + b", "c"]
    rejected = json.loads((out / "report.json").read_text())["splits"]["train"]
    assert "render_unsupported" in json.dumps(rejected)


def _ink_box(page) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(np.asarray(page) < 128)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def test_fit_draws_a_formula_as_large_as_the_page_allows():
    latex = r"\frac { 3 a } { 8 x }"
    plain = render(latex, STYLE, canvas=(168, 56))
    fitted = render(latex, dataclasses.replace(STYLE, fit=2.0), canvas=(168, 56))
    assert fitted.size == plain.size == (168, 56)
    x0, y0, x1, y1 = _ink_box(plain)
    fx0, fy0, fx1, fy1 = _ink_box(fitted)
    assert fy1 - fy0 > 1.3 * (y1 - y0)  # the fraction's parts drawn larger
    assert fy1 - fy0 <= 56 - 2 and abs(fx0 - x0) <= 2  # within the page, at the same left margin
    # At most `fit` times: a short flat formula is capped, not blown up to the page height.
    short_plain, short = (
        _ink_box(render("1", dataclasses.replace(STYLE, fit=f), canvas=(168, 56))) for f in (1.0, 1.5)
    )
    assert (short[3] - short[1]) <= 1.5 * (short_plain[3] - short_plain[1]) + 2
    # A drawing already too wide for the page is still refused, not shrunk.
    with pytest.raises(RenderError) as err:
        render(r"x + y + z", dataclasses.replace(STYLE, fit=2.0), canvas=(20, 20))
    assert err.value.reason == "clipped"
    # An augmented page keeps a margin for its rotation: no ink on its border.
    space = StyleSpace(fontsets=("dejavusans",), font_size=(18.0, 18.0), augment=1.0, fit=2.0)
    for key in range(6):
        look = space.sample(1, f"k{key}")
        assert look.fit == 2.0 and look.augment_seed is not None
        render(r"9 _ { 7 + } 6 3 ^ { y }", look, canvas=(168, 56))  # raises ``clipped`` if it touched


def test_fit_is_recorded_only_when_used_and_needs_a_page():
    assert "fit" not in STYLE.to_meta()  # records built before `fit` existed keep their meta
    assert dataclasses.replace(STYLE, fit=2.0).to_meta()["fit"] == 2.0
    with pytest.raises(ValueError, match="at least 1"):
        StyleSpace.from_options({"fit": 0.5})
    with pytest.raises(ValueError, match="expected a number"):
        StyleSpace.from_options({"fit": [1, 2]})
    corpus = {"generator": {"symbols": ["1", "2"], "max_symbols": 2}, "count": 2}
    with pytest.raises(ValueError, match="give 'canvas'"):
        list(read_synthetic(Path("."), "train", Rejects(log=False), corpus=corpus, style={"fit": 2}))
