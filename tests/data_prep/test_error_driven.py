"""Error-driven learning samples, synthetic errors and confusion tables."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.contract import (
    DELETED,
    ERROR_END,
    ERROR_START,
    TASK_ERROR_CORRECTION,
    TASK_ERROR_DETECTION,
    Record,
    extract_latex,
    main_record,
    prompt_for,
)
from data_prep.predictions import iter_prediction_rows
from data_prep.rejects import Rejects
from data_prep.tasks import error_driven
from data_prep.tasks.error_driven import (
    Edit,
    apply_detection,
    apply_edits,
    braces_balanced,
    correction_answer,
    edits_for,
    mark_errors,
    parse_edits,
    read_predictions,
    samples_from_predictions,
    synthetic_errors,
    synthetic_samples,
)
from data_prep.tasks.error_driven import confusions as confusions_module
from data_prep.tasks.error_driven.confusions import BUILTIN_CONFUSABLE_GROUPS, ConfusionTable

ALPHABET = ["x", "y", "2", "1", "l", "^", "_", "{", "}", "\\frac", "+", "=", "\\alpha", "a"]
TOKENS = st.lists(st.sampled_from(ALPHABET), max_size=12)


def _record(latex: str, id: str = "img1") -> Record:
    return main_record(id, "crohme", "train", b"image-bytes", latex, edition="comer")


def _roundtrip(truth: str, prediction: str) -> None:
    marked = mark_errors(truth, prediction)
    answer = correction_answer(truth, prediction)
    assert apply_detection(marked) == " ".join(prediction.split())
    assert apply_edits(marked, parse_edits(answer)) == " ".join(truth.split())
    assert extract_latex(answer) == " ".join(truth.split())


# --------------------------------------------------------------------------- #
# Marked predictions and edits
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("truth", "prediction", "marked", "edits"),
    [
        (
            "x ^ { 2 } + 1",
            "x _ { 2 } + l",
            f"x {ERROR_START} _ {ERROR_END} {{ 2 }} + {ERROR_START} l {ERROR_END}",
            ["REPLACE:_ -> ^", "REPLACE:l -> 1"],
        ),
        ("a b c", "a c", f"a {DELETED} c", ["INSERT:b"]),
        ("a + b", "a + b + c", f"a + b {ERROR_START} + c {ERROR_END}", ["DELETE:+ c"]),
        # Adjacent wrong blocks merge into one span; the two sides may differ in length.
        ("a b c d e", "a x y e", f"a {ERROR_START} x y {ERROR_END} e", ["REPLACE:x y -> b c d"]),
        ("a b c d", "a d", f"a {DELETED} {DELETED} d", ["INSERT:b c"]),
        ("\\frac { a } { b }", "\\frac { a } b }", f"\\frac {{ a }} {DELETED} b }}", ["INSERT:{"]),
        ("a b", "", f"{DELETED} {DELETED}", ["INSERT:a b"]),
    ],
)
def test_worked_examples(truth, prediction, marked, edits):
    assert mark_errors(truth, prediction) == marked
    answer = correction_answer(truth, prediction)
    assert answer.splitlines() == [*edits, truth]
    assert [e.to_line() for e in edits_for(truth, prediction)] == edits
    _roundtrip(truth, prediction)


def test_edit_lines_parse_and_validate():
    edit = Edit.from_line("REPLACE:a b -> c")
    assert edit == Edit("replace", ("a", "b"), ("c",))
    assert Edit.from_line("DELETE:x") == Edit("delete", source=("x",))
    assert Edit.from_line("INSERT:{ y }") == Edit("insert", target=("{", "y", "}"))
    assert Edit.from_line("REPLACE: a b -> c") == edit  # a space after the colon reads the same
    for bad in ["SWAP: a b", "REPLACE:a b", "REPLACE:a -> b -> c", "REPLACE:-> c", "DELETE:", "INSERT:"]:
        with pytest.raises(ValueError):
            Edit.from_line(bad)
    with pytest.raises(ValueError, match="reserved"):
        Edit("insert", target=(DELETED,))


def test_apply_edits_rejects_edits_that_do_not_fit():
    marked = f"a {ERROR_START} x {ERROR_END} c {DELETED}"
    good = [Edit("replace", ("x",), ("b",)), Edit("insert", target=("d",))]
    assert apply_edits(marked, good) == "a b c d"
    with pytest.raises(ValueError, match="1 edits for 2 markers"):
        apply_edits(marked, good[:1])
    with pytest.raises(ValueError, match="does not match marked span"):
        apply_edits(marked, [Edit("replace", ("y",), ("b",)), good[1]])
    with pytest.raises(ValueError, match="needs INSERT of 1"):
        apply_edits(marked, [good[0], Edit("delete", source=("c",))])
    with pytest.raises(ValueError, match="needs INSERT of 2"):
        apply_edits(f"a {DELETED} {DELETED}", [Edit("insert", target=("b",))])
    assert apply_edits(f"a {DELETED} {DELETED}", [Edit("insert", target=("b", "c"))]) == "a b c"


@pytest.mark.parametrize(
    "marked",
    [
        f"a {ERROR_START} b",
        f"a {ERROR_END}",
        f"{ERROR_START} {ERROR_START} a {ERROR_END} {ERROR_END}",
        f"{ERROR_START} {ERROR_END}",
        f"{ERROR_START} a {DELETED} {ERROR_END}",
    ],
)
def test_malformed_marked_predictions_raise(marked):
    with pytest.raises(ValueError, match="marked prediction"):
        apply_detection(marked)


def test_parse_edits_names_the_bad_line():
    assert parse_edits("x ^ { 2 }") == []
    with pytest.raises(ValueError, match="line 2"):
        parse_edits("DELETE:a\nREPLACE: b\nx")


def test_reserved_tokens_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        mark_errors("a -> b", "a b")
    with pytest.raises(ValueError, match="reserved"):
        mark_errors("a b", f"a {DELETED}")


@settings(max_examples=400, deadline=None)
@given(TOKENS.filter(bool), TOKENS)
def test_edits_applied_to_the_marked_prediction_give_the_truth(truth, prediction):
    _roundtrip(" ".join(truth), " ".join(prediction))
    marked = mark_errors(" ".join(truth), " ".join(prediction)).split()
    assert marked.count(ERROR_START) == marked.count(ERROR_END)
    # One <deleted> per missing token; a gap is a run of them.
    gaps = [e for e in edits_for(" ".join(truth), " ".join(prediction)) if e.kind == "insert"]
    assert marked.count(DELETED) == sum(len(e.target) for e in gaps)
    # Markers are never adjacent: each pair is separated by at least one correct token.
    collapsed = [t for i, t in enumerate(marked) if not (t == DELETED and i and marked[i - 1] == DELETED)]
    starts = [i for i, t in enumerate(collapsed) if t in (ERROR_START, DELETED)]
    ends = [i for i, t in enumerate(collapsed) if t in (ERROR_END, DELETED)]
    assert all(start > end + 1 for end, start in zip(ends, starts[1:]))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["replace", "delete", "insert"]),
    st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=4),
    st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=4),
)
def test_edit_lines_roundtrip(kind, source, target):
    edit = Edit(kind, tuple(source) if kind != "insert" else (), tuple(target) if kind != "delete" else ())
    assert Edit.from_line(edit.to_line()) == edit


# --------------------------------------------------------------------------- #
# Samples
# --------------------------------------------------------------------------- #


def test_samples_from_predictions():
    record = _record("x ^ { 2 } + 1")
    predictions = ["x ^ { 2 } + 1", "x _ { 2 } + 1", "x  _ { 2 } + 1", "x ^ { 2 } + l", "x ^ 2 + 1"]
    samples = samples_from_predictions(record, predictions, max_per_record=2)
    assert [s.id for s in samples] == [
        "img1#error_detection#0",
        "img1#error_correction#0",
        "img1#error_detection#1",
        "img1#error_correction#1",
    ]
    detection, correction = samples[0], samples[1]
    assert detection.task == TASK_ERROR_DETECTION and correction.task == TASK_ERROR_CORRECTION
    assert detection.prompt == prompt_for(TASK_ERROR_DETECTION, prediction="x _ { 2 } + 1")
    assert detection.answer == f"x {ERROR_START} _ {ERROR_END} {{ 2 }} + 1"
    assert correction.prompt == prompt_for(TASK_ERROR_CORRECTION, prediction=detection.answer)
    assert correction.answer == "REPLACE:_ -> ^\nx ^ { 2 } + 1"
    assert correction.latex == record.latex
    assert samples[2].meta["prediction"] == "x ^ { 2 } + l"
    for sample in samples:
        assert sample.image is record.image and sample.source == "crohme" and sample.split == "train"
        assert sample.meta["base_id"] == "img1" and sample.meta["origin"] == "model"
        assert sample.meta["edition"] == "comer" and sample.meta["edit_distance"] == 1
        json.dumps(sample.to_row()["meta"])


def test_samples_count_unusable_predictions():
    rejects = Rejects(log=False)
    samples = samples_from_predictions(_record("a b"), ["", f"a {ERROR_END}", "a c"], rejects=rejects)
    assert [s.meta["prediction"] for s in samples] == ["a c", "a c"]
    assert rejects.by_reason() == {"empty_prediction": 1, "reserved_token_in_prediction": 1}
    assert samples_from_predictions(_record("a -> b"), ["a b"], rejects=rejects) == []
    assert rejects.by_reason()["reserved_token_in_truth"] == 1
    with pytest.raises(ValueError, match="main-task"):
        samples_from_predictions(samples[0], ["a c"])


def test_read_predictions(tmp_path):
    path = tmp_path / "predictions.jsonl"
    rows = [
        {"id": "a", "gt": "x + 1", "pred": "x + 1"},
        {"id": "a", "gt": "x + 1", "pred": "x + l"},
        {"id": "a", "gt": "x + 1", "pred": "x  +  l"},
        {"id": "a", "gt": "x + 1", "pred": "x - 1", "score": 0.3},
        {"id": "b", "gt": "y", "pred": "y"},
        {"id": "c", "gt": "z", "pred": ""},
        {"id": "a", "gt": "x + 2", "pred": "x"},
        {"id": "d", "gt": "z"},
        {"id": None, "gt": "z", "pred": "z"},
        {"id": 5, "gt": "z", "pred": "2"},
        {"id": "e", "gt": "z", "pred": "", "error": "corrupt_image"},
    ]
    lines = [json.dumps(r) for r in rows] + ["{not json", "[1, 2]", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = Rejects(log=False)
    assert read_predictions(path, rejects) == {"a": ["x + l", "x - 1"], "c": [""], "5": ["2"]}
    assert rejects.by_reason() == {
        "conflicting_gt": 1,
        "missing_field": 1,
        "not_a_string": 1,
        "generation_error": 1,
        "invalid_json": 1,
        "not_an_object": 1,
    }
    lines_of = {r.reason: r.line for examples in rejects.examples.values() for r in examples}
    assert lines_of == {
        "conflicting_gt": 7,
        "missing_field": 8,
        "not_a_string": 9,
        "generation_error": 11,
        "invalid_json": 12,
        "not_an_object": 13,
    }


# --------------------------------------------------------------------------- #
# Synthetic errors
# --------------------------------------------------------------------------- #


@st.composite
def balanced_latex(draw) -> str:
    """Random token sequences with balanced braces and braced scripts."""
    atoms = st.sampled_from(["x", "y", "1", "2", "0", "\\alpha", "+", "=", "\\times", "a", "q"])
    tokens: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        form = draw(st.integers(0, 3))
        if form == 0:
            tokens.append(draw(atoms))
        elif form == 1:
            tokens += [draw(atoms), draw(st.sampled_from(["^", "_"])), "{", draw(atoms), "}"]
        elif form == 2:
            tokens += ["\\frac", "{", draw(atoms), "}", "{", draw(atoms), draw(atoms), "}"]
        else:
            tokens += ["\\sqrt", "{", draw(atoms), "}"]
    return " ".join(tokens)


@settings(max_examples=200, deadline=None)
@given(balanced_latex(), st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_synthetic_errors_differ_and_keep_braces_balanced(latex, seed, n):
    wrong = synthetic_errors(latex, random.Random(seed), n)
    assert 1 <= len(wrong) <= n
    assert len(set(wrong)) == len(wrong)
    for prediction in wrong:
        assert prediction.split() and prediction.split() != latex.split()
        assert braces_balanced(prediction.split())
    samples = samples_from_predictions(_record(latex), wrong, max_per_record=n)
    assert len(samples) == 2 * len(wrong)


def test_synthetic_errors_cover_every_kind_and_are_reproducible():
    latex = "x ^ { 2 } + y _ { 1 } = 0"
    assert synthetic_errors(latex, random.Random(7), 30) == synthetic_errors(latex, random.Random(7), 30)
    first = {w for seed in range(10) for w in synthetic_errors(latex, random.Random(seed), 30)}
    assert "x _ { 2 } + y _ { 1 } = 0" in first  # misplaced script
    assert "x 2 + y _ { 1 } = 0" in first  # script content on the baseline
    assert "x ^ { 2 } + y _ { l } = 0" in first or "x ^ { 2 } + y _ { | } = 0" in first  # confusion
    assert any(len(w.split()) == len(latex.split()) + 1 for w in first)  # duplicated token
    assert any(len(w.split()) == len(latex.split()) - 1 for w in first)  # dropped token


def test_synthetic_errors_use_the_given_table_and_refuse_bad_input():
    table = ConfusionTable.from_pairs([("x", "k")])
    # With only substitution possible (no scripts) and one symbol, every error involves x -> k.
    assert set(synthetic_errors("x", random.Random(0), 5, table)) <= {"k", "x x", "k x", "x k", "k k"}
    with pytest.raises(ValueError, match="unbalanced"):
        synthetic_errors("x ^ { 2", random.Random(0), 2)
    with pytest.raises(ValueError, match="non-empty"):
        synthetic_errors("  ", random.Random(0), 2)
    assert synthetic_errors("{ }", random.Random(0), 3) == []
    rejects = Rejects(log=False)
    assert synthetic_samples(_record("x ^ { 2"), random.Random(0), rejects=rejects) == []
    assert rejects.by_reason() == {"unusable_truth": 1}
    samples = synthetic_samples(_record("x ^ { 2 }"), random.Random(0), n=2)
    assert len(samples) == 4 and {s.meta["origin"] for s in samples} == {"synthetic"}


def test_synthetic_errors_on_real_crohme_captions(shared_data):
    captions = (shared_data / "crohme" / "crohme_train_caption_wap.txt").read_text(encoding="utf-8")
    rng = random.Random(0)
    lines = captions.split("\n")[:400]
    produced = 0
    for line in lines:
        name, latex = line.split("\t", 1)
        wrong = synthetic_errors(latex, rng, 2)
        produced += len(wrong)
        samples = samples_from_predictions(_record(latex, name), wrong)
        assert len(samples) == 2 * len(wrong)
    assert produced >= 0.95 * 2 * len(lines)


# --------------------------------------------------------------------------- #
# Confusion tables
# --------------------------------------------------------------------------- #


def test_builtin_table_is_symmetric_within_groups():
    table = ConfusionTable.builtin()
    for group in BUILTIN_CONFUSABLE_GROUPS:
        for gt in group:
            assert set(group) - {gt} <= set(table.candidates(gt))
    assert set(table.candidates("1")) >= {"l", "|"}
    assert "\\times" in table.candidates("x") and "a" in table.candidates("\\alpha")
    assert all(gt not in preds for gt, preds in table.counts.items())


def test_table_learned_from_prediction_files_roundtrips_json(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(
        json.dumps({"id": "1", "gt": "x ^ { 2 }", "pred": "x _ { z }"})
        + "\n"
        + json.dumps({"id": "2", "gt": "1 + 1", "pred": "1 + 1"})
        + "\n",
        encoding="utf-8",
    )
    second.write_text(json.dumps({"id": "3", "gt": "2 1", "pred": "z l"}) + "\nbroken\n", encoding="utf-8")
    rejects = Rejects(log=False)
    table = ConfusionTable.from_prediction_files([first, second], rejects)
    assert table.counts == {"^": {"_": 1.0}, "2": {"z": 2.0}, "1": {"l": 1.0}}
    assert rejects.by_reason() == {"invalid_json": 1}
    assert table.most_common(1) == [("2", "z", 2.0)]
    out = tmp_path / "sub" / "table.json"
    table.to_json(out)
    assert ConfusionTable.from_json(out) == table
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind
    merged = table.merged(ConfusionTable.builtin())
    assert merged.candidates("2")["z"] == 3.0
    (tmp_path / "bad.json").write_text('{"confusions": {}}', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: not a confusion table"):
        ConfusionTable.from_json(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="single"):
        table.add("a b", "c")


def test_table_sampling_follows_weights():
    table = ConfusionTable({"x": {"k": 9.0, "X": 1.0}})
    rng = random.Random(0)
    draws = [table.sample("x", rng) for _ in range(2000)]
    assert 0.85 < draws.count("k") / len(draws) < 0.95
    assert table.sample("x", rng, exclude={"k", "X"}) is None
    assert table.sample("unknown", rng) is None


def test_prediction_rows_normalise_whitespace(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "1", "gt": " x  + 1 ", "pred": "x +\t1"}) + "\n", encoding="utf-8")
    (row,) = iter_prediction_rows(path)
    assert (row.gt, row.pred, row.line, row.is_correct) == ("x + 1", "x + 1", 1, True)


# --------------------------------------------------------------------------- #
# Entry points
# --------------------------------------------------------------------------- #


def test_command_lines(tmp_path, capsys):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(
        json.dumps({"id": "7", "gt": "x ^ { 2 }", "pred": "x ^ { z }"}) + "\n", encoding="utf-8"
    )
    table_path = tmp_path / "table.json"
    confusions_module.main(["--predictions", str(predictions), "--output", str(table_path)])
    assert ConfusionTable.from_json(table_path).counts == {"2": {"z": 1.0}}

    truths = tmp_path / "captions.txt"
    truths.write_text("18_em_0\tx ^ { 2 } + 1\nbroken line\n", encoding="utf-8")
    out = tmp_path / "edl.jsonl"
    error_driven.main(
        [
            "--predictions",
            str(predictions),
            "--truths",
            str(truths),
            "--output",
            str(out),
            "--per-record",
            "2",
        ]
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows[:2]] == ["7#error_detection#0", "7#error_correction#0"]
    assert rows[1]["answer"] == "REPLACE:z -> 2\nx ^ { 2 }"
    synthetic = [r for r in rows if json.loads(r["meta"])["origin"] == "synthetic"]
    assert len(synthetic) == 4 and all(r["id"].startswith("18_em_0#") for r in synthetic)
    assert "malformed_truth_line: 1" in capsys.readouterr().out


def test_prompts_and_edit_lines_in_the_papers_wording():
    """Fig. 2: the detection prompt ends ``Expression: PRED``, correction ``Marked Expression:``,
    and a replacement is written ``REPLACE:d -> a``."""
    detection = prompt_for(TASK_ERROR_DETECTION, prediction="d + b")
    assert detection == (
        "I have an image of a handwritten mathematical expression and its OCR recognition result. "
        "Please help me to detect possible errors in the recognition result and mark the places "
        "where errors occur with <error_start> <error_end> and <deleted>. Expression: d + b"
    )
    marked = f"{ERROR_START} d {ERROR_END} + b"
    correction = prompt_for(TASK_ERROR_CORRECTION, prediction=marked)
    assert correction == (
        "I have an image of a handwritten mathematical expression and its OCR recognition result. "
        "Please correct the errors marked <error_start> <error_end> and <deleted> and give the "
        f"correct mathematical expression. Marked Expression: {marked}"
    )
    assert [e.to_line() for e in edits_for("a + b", "d + b")] == ["REPLACE:d -> a"]
