"""eval.scoring.score: every known format, joins with a caption file, duplicates, the published figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from eval.score import main
from eval.scoring.formats import FORMATS, FormatError, detect_format, load_predictions
from eval.scoring.predictions import PredictionWriter, make_row
from eval.scoring.score import score_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scoring"
UNIMUMER = FIXTURES / "unimumer_crohme2023_excerpt.json"
TAMER = FIXTURES / "tamer_hme100k_excerpt.json"


def _table_row(output: str, set_name: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == set_name:
            return cells
    raise AssertionError(f"no table row for {set_name} in:\n{output}")


def _write_tsv(path, lines):
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline, like the WAP captions
    return path


def test_detects_every_format(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    with PredictionWriter(jsonl) as w:
        w.write(make_row("1", "s", "a", "a"))
    tsv = _write_tsv(tmp_path / "p.txt", ["a\tx + 1"])
    assert detect_format(jsonl) == "jsonl"
    assert detect_format(UNIMUMER) == "unimumer"
    assert detect_format(TAMER) == "tamer"
    assert detect_format(tsv) == "tsv"


@pytest.mark.parametrize("content", ["hello world\nsecond line\n", '[{"a": 1}]', '{"x": 1, "y": 2}'])
def test_unknown_format_names_the_known_ones(tmp_path, content):
    path = tmp_path / "weird.txt"
    path.write_text(content)
    with pytest.raises(FormatError) as info:
        detect_format(path)
    for name in FORMATS:
        assert f"- {name}:" in str(info.value)


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("  \n")
    with pytest.raises(FormatError, match="empty"):
        detect_format(path)


def test_unimumer_published_file_excerpt():
    loaded = load_predictions(UNIMUMER, set_name="crohme2023")
    assert loaded.format == "unimumer"
    assert [r.id for r in loaded.rows][:2] == ["form_5_241_E1202", "form_201_E1605"]
    # By hand: distances 0, 0, 2, 1, 1, 4.
    assert [r.distance for r in loaded.rows] == [0, 0, 2, 1, 1, 4]
    scores = score_rows(loaded.rows)["crohme2023"]
    assert (scores.exact, scores.within[1], scores.within[2], scores.within[3]) == (2, 4, 5, 5)


def test_tamer_published_file_distances_agree_with_ours():
    loaded = load_predictions(TAMER)
    assert loaded.format == "tamer"
    assert loaded.rows[0].set == "hme100k"  # from the file name
    assert loaded.distance_disagreements == []
    by_id = {r.id: r for r in loaded.rows}
    assert by_id["test_14361"].pred == "" and by_id["test_14361"].distance == 6  # empty prediction
    assert by_id["test_415"].distance == 1  # the CJK full stop is a token


def test_tamer_distance_disagreements_are_reported(tmp_path):
    data = json.loads(TAMER.read_text(encoding="utf-8"))
    data["test_6240.jpg"]["dist"] = 3
    path = tmp_path / "tamer_pred.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    loaded = load_predictions(path)
    assert loaded.distance_disagreements == [{"id": "test_6240", "stored": 3, "ours": 0}]
    assert any("disagrees with ours on 1 items" in note for note in loaded.notes())


def test_unimumer_recorded_distance_is_checked(tmp_path):
    # Their CROHME files also carry "distance" (and raw_gt / raw_pred, ignored).
    items = [
        {"img_id": "18_em_15", "gt": "k = 1 0 0", "pred": "k = 1 0", "distance": 1, "raw_pred": "k = 1 0"},
        {"img_id": "35_em_3", "gt": "\\beta ( F )", "pred": "p ( F )", "distance": 2},
    ]
    path = tmp_path / "crohme_2014.json"
    path.write_text(json.dumps(items))
    loaded = load_predictions(path)
    assert loaded.rows[0].set == "crohme2014"
    assert loaded.distance_disagreements == [{"id": "35_em_3", "stored": 2, "ours": 1}]


def test_tsv_joined_with_captions_reports_both_sides(tmp_path):
    captions = _write_tsv(tmp_path / "caption.txt", ["a.jpg\t长 = 2", "b.jpg\tx + 1", "c.jpg\ty"])
    preds = _write_tsv(tmp_path / "pred.txt", ["a\t长 = 2", "b.jpg\tx - 1", "zzz\tq"])
    loaded = load_predictions(preds, gt_path=captions, set_name="hme100k")
    by_id = {r.id: r for r in loaded.rows}
    assert set(by_id) == {"a", "b", "c"}
    assert by_id["a"].distance == 0 and by_id["b"].distance == 1
    assert by_id["c"].error == "missing_prediction" and by_id["c"].distance == 1
    assert loaded.rejects.by_reason() == {"prediction_without_truth": 1}
    scores = score_rows(loaded.rows)["hme100k"]
    assert scores.n == 3 and scores.exact == 1 and scores.failed == {"missing_prediction": 1}


def test_tsv_prediction_without_truth_is_cited_by_line_in_the_notes(tmp_path):
    captions = _write_tsv(tmp_path / "caption.txt", ["a\tx", "b\ty"])
    preds = _write_tsv(tmp_path / "pred.txt", ["a\tx", "b\ty", "stray\tz", "a_typo"])
    loaded = load_predictions(preds, gt_path=captions, set_name="crohme2014")
    assert [(r.line, r.detail) for r in loaded.rejects.examples[("score", "prediction_without_truth")]] == [
        (3, "stray"),
        (4, "a_typo"),
    ]
    notes = loaded.notes()
    assert any(
        note.startswith("rejected as prediction_without_truth: 2, e.g.")
        and f"{preds}:3: prediction_without_truth (stray)" in note
        for note in notes
    )
    assert not any(":;" in note for note in notes)


def test_tsv_without_truth_is_a_clear_error(tmp_path):
    preds = _write_tsv(tmp_path / "pred.txt", ["a\tx"])
    with pytest.raises(ValueError, match="--gt"):
        load_predictions(preds)


def test_gt_option_rescores_a_file_that_has_its_own_truth(tmp_path):
    captions = _write_tsv(
        tmp_path / "caption.txt",
        [
            f"{name}\t{gt}"
            for name, gt in [
                ("form_5_241_E1202", "z \\rightarrow y"),
                ("form_201_E1605", "- \\frac { 3 } { 4 }"),
            ]
        ],
    )
    loaded = load_predictions(UNIMUMER, gt_path=captions)
    assert loaded.gt_replaced == 1
    assert {r.id: r.distance for r in loaded.rows} == {"form_5_241_E1202": 1, "form_201_E1605": 0}
    assert loaded.rejects.by_reason() == {"prediction_without_truth": 4}


def test_duplicated_ids_are_an_error_unless_allowed(tmp_path):
    path = tmp_path / "dup.json"
    items = [
        {"img_id": "x", "gt": "a", "pred": "a"},
        {"img_id": "x", "gt": "a", "pred": "b"},
        {"img_id": "y", "gt": "a", "pred": "a"},
    ]
    path.write_text(json.dumps(items))
    with pytest.raises(ValueError, match="1 ids occur more than once"):
        load_predictions(path)
    loaded = load_predictions(path, allow_duplicates=True)
    assert [(r.id, r.pred) for r in loaded.rows] == [("x", "a"), ("y", "a")]
    assert loaded.rejects.by_reason() == {"duplicate_id": 1}


def test_project_jsonl_with_failures_and_set_selection(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with PredictionWriter(path) as w:
        w.write(make_row("1", "crohme2014", "a", "a"))
        w.write(make_row("2", "crohme2014", "a b", None, error="corrupt_image"))
        w.write(make_row("1", "crohme2016", "a", "b"))
    scores = score_rows(load_predictions(path).rows)
    assert list(scores) == ["crohme2014", "crohme2016"]
    assert scores["crohme2014"].n == 2 and scores["crohme2014"].failed == {"corrupt_image": 1}
    only = load_predictions(path, set_name="CROHME_2016")
    assert [r.key for r in only.rows] == [("crohme2016", "1")]
    with pytest.raises(ValueError, match="sets in the file: crohme2014, crohme2016"):
        load_predictions(path, set_name="hme100k")


@pytest.mark.parametrize(
    "set_name, n, published",
    [
        ("crohme2014", 986, ("82.05", "89.45", "93.00")),
        ("crohme2016", 1147, ("77.94", "87.45", "92.07")),
        ("crohme2019", 1199, ("79.23", "90.91", "93.83")),
    ],
)
def test_scorer_prints_uni_mumer_published_figures(tmp_path, capsys, set_name, n, published):
    """A Uni-MuMER-format file with exactly the published counts of distance 0 / 1 / 2 / 3+."""
    counts = [round(float(p) * n / 100) for p in published]  # items within distance 0, 1, 2
    by_distance = {0: counts[0], 1: counts[1] - counts[0], 2: counts[2] - counts[1], 3: n - counts[2]}
    gt = "\\frac { a } { b } + c ^ { 2 }"
    tokens = gt.split()
    items = []
    for distance, how_many in by_distance.items():
        pred = " ".join(["?"] * distance + tokens[distance:])  # `distance` substitutions
        items += [{"gt": gt, "pred": pred, "img_id": f"{set_name}_{distance}_{i}"} for i in range(how_many)]
    path = tmp_path / f"{set_name}_pred.json"
    path.write_text(json.dumps(items))
    assert main([str(path), "--output-dir", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    row = _table_row(out, set_name)
    assert row[1] == str(n)
    assert tuple(row[2:5]) == published
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["sets"][set_name]["exprate"] == float(published[0])
    # The same figures sit in the comparison with the published table, on the "this run" line.
    ours = _table_row(out, "**this run**")
    assert published[0] in ours


def test_cli_writes_reports_and_fails_clearly(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main([str(TAMER), "--output-dir", str(out_dir), "--bootstrap", "200", "--seed", "1"]) == 0
    assert {p.name for p in out_dir.iterdir()} == {"summary.md", "summary.json", "report.html", "plots"}
    printed = capsys.readouterr().out
    assert (out_dir / "summary.md").read_text(encoding="utf-8").strip() in printed
    assert re.search(r"hme100k: ExpRate 95% CI \d+\.\d\d to \d+\.\d\d", printed)
    bad = tmp_path / "bad.txt"
    bad.write_text("no tabs here\n")
    assert main([str(bad), "--output-dir", str(tmp_path / "o2")]) == 2
    assert "known formats" in capsys.readouterr().err


def test_real_caption_editions_differ_on_85_crohme2014_lines(shared_data, tmp_path, capsys):
    """Scoring the WAP caption edition as predictions against the CoMER edition (the one published
    tables use): the data README says 85 of the 986 lines differ."""
    crohme = shared_data / "crohme"
    wap = tmp_path / "wap_as_predictions.txt"
    shutil.copy(crohme / "crohme2014_test_caption_wap.txt", wap)
    gt = crohme / "crohme2014_test_caption_comer.txt"
    loaded = load_predictions(wap, gt_path=gt, set_name="crohme2014")
    scores = score_rows(loaded.rows)["crohme2014"]
    assert scores.n == 986 and scores.n - scores.exact == 85
    assert len(loaded.rejects) == 0
    assert (
        main(
            [
                str(wap),
                "--gt",
                str(gt),
                "--set",
                "crohme2014",
                "--output-dir",
                str(tmp_path / "o"),
                "--bootstrap",
                "0",
            ]
        )
        == 0
    )
    assert _table_row(capsys.readouterr().out, "crohme2014")[2] == "91.38"  # 901 / 986


def test_real_normaliser_forgives_caption_edition_differences(shared_data, tmp_path):
    pytest.importorskip("data_prep.latex")
    crohme = shared_data / "crohme"
    wap = tmp_path / "wap_as_predictions.txt"
    shutil.copy(crohme / "crohme2014_test_caption_wap.txt", wap)
    loaded = load_predictions(
        wap, gt_path=crohme / "crohme2014_test_caption_comer.txt", set_name="crohme2014"
    )
    scores = score_rows(loaded.rows, normalize=True)["crohme2014"]
    # The editions differ mostly by \limits, which the normalised column treats as equivalent;
    # ExpRate itself stays the strict figure.
    assert scores.exact == 901 and scores.normalized_exact > scores.exact


def test_two_runs_with_the_same_file_name_are_named_by_their_folders(tmp_path, capsys):
    # `make eval OUT=outputs/base` and `OUT=outputs/tree_cot` both write eval/crohme2014.main.jsonl.
    paths = []
    for run, preds in (("base", ["x", "q"]), ("tree_cot", ["x", "y"])):
        path = tmp_path / run / "eval" / "crohme2014.main.jsonl"
        path.parent.mkdir(parents=True)
        with PredictionWriter(path) as writer:
            for item_id, gt, pred in zip(["a", "b"], ["x", "y"], preds):
                writer.write(make_row(item_id, "crohme2014", gt, pred))
        paths.append(path)
    assert main([str(paths[0]), str(paths[1]), "--bootstrap", "0"]) == 0
    out_dir = paths[0].parent / "base.crohme2014.main_vs_tree_cot.crohme2014.main.scores"
    compare = (out_dir / "compare.md").read_text()
    assert "base.crohme2014.main" in compare and "tree_cot.crohme2014.main" in compare
    assert (out_dir / "tree_cot.crohme2014.main" / "summary.md").is_file()
    # The paired page: the one item only B (tree_cot) got right, typeset beside the truth.
    page = (out_dir / "compare.html").read_text(encoding="utf-8")
    assert "Only B right (tree_cot.crohme2014.main): 1 items, 1 shown" in page
    assert (out_dir / "plots" / "paired.png").is_file()
