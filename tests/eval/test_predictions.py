"""The predictions JSONL: row schema, resumable writer, tolerant reader."""

from __future__ import annotations

import json

import pytest

from data_prep.rejects import Rejects
from eval.scoring.predictions import (
    ERROR_CORRUPT_IMAGE,
    ERROR_EMPTY_GENERATION,
    FIELDS,
    PredictionRow,
    PredictionWriter,
    make_row,
    read_prediction_rows,
)


def test_make_row_scores_the_last_line_of_the_output():
    row = make_row("18_em_5", "crohme2014", "x ^ { 2 }", "a\n(tree)\n\nx ^ { 2 }  \n")
    assert row.pred == "x ^ { 2 }" and row.distance == 0 and row.error is None
    assert list(row.to_dict()) == list(FIELDS)


def test_make_row_marks_empty_and_failed_generations():
    empty = make_row("a", "s", "x + 1", "  \n")
    assert empty.error == ERROR_EMPTY_GENERATION and empty.pred == "" and empty.distance == 3
    corrupt = make_row("b", "s", "x", None, error=ERROR_CORRUPT_IMAGE)
    assert corrupt.error == ERROR_CORRUPT_IMAGE and corrupt.distance == 1


def test_writer_resumes_and_refuses_a_second_copy(tmp_path):
    path = tmp_path / "preds.jsonl"
    with PredictionWriter(path) as writer:
        writer.write(make_row("1", "crohme2014", "长 = 2", "长 = 2"))
        writer.write(make_row("2", "crohme2014", "a", "b"))
    assert "长" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    with PredictionWriter(path) as writer:
        assert writer.done_ids("crohme2014") == {"1", "2"}
        assert writer.done_ids() == {("crohme2014", "1"), ("crohme2014", "2")}
        with pytest.raises(ValueError, match="already in the file"):
            writer.write(make_row("2", "crohme2014", "a", "a"))
        writer.write(make_row("3", "crohme2014", "a", "a"))
    assert [r.id for r in read_prediction_rows(path)] == ["1", "2", "3"]


def test_writer_cuts_a_truncated_last_line_and_redoes_that_item(tmp_path):
    path = tmp_path / "preds.jsonl"
    with PredictionWriter(path) as writer:
        writer.write(make_row("1", "s", "a", "a"))
    row2 = json.dumps(make_row("2", "s", "a b", "a b").to_dict())
    with path.open("a", encoding="utf-8") as f:
        f.write(row2[: len(row2) // 2])  # a run killed mid-line
    with PredictionWriter(path) as writer:
        assert writer.done_ids("s") == {"1"}
        writer.write(make_row("2", "s", "a b", "a b"))
    rows = read_prediction_rows(path)
    assert [(r.id, r.distance) for r in rows] == [("1", 0), ("2", 0)]


def test_writer_keeps_a_complete_last_line_without_newline(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(make_row("1", "s", "a", "a").to_dict()), encoding="utf-8")
    with PredictionWriter(path) as writer:
        assert writer.done_ids("s") == {"1"}
        writer.write(make_row("2", "s", "a", "b"))
    assert [r.id for r in read_prediction_rows(path)] == ["1", "2"]


def test_writer_without_resume_refuses_an_existing_file(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(FileExistsError):
        PredictionWriter(path, resume=False)


def test_reader_reports_a_truncated_last_line(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(
        json.dumps({"id": "1", "gt": "a", "pred": "a"}) + '\n{"id": "2", "gt": "a', encoding="utf-8"
    )
    rejects = Rejects(log=False)
    rows = read_prediction_rows(path, rejects)
    assert [r.id for r in rows] == ["1"]
    assert rejects.by_reason() == {"truncated_last_line": 1}
    assert f"{path}:2" in rejects.summary()


def test_reader_refuses_a_damaged_middle_line(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text('{"id": "1", "gt": "a", "pred": "a"}\nnot json\n{"id": "3", "gt": "a", "pred": "a"}\n')
    with pytest.raises(ValueError, match=r"preds.jsonl:2: not a JSON line"):
        read_prediction_rows(path)


def test_reader_names_missing_fields(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text('{"id": "1", "pred": "a"}\n')
    with pytest.raises(ValueError, match=r"preds.jsonl:1: prediction row lacks gt"):
        read_prediction_rows(path)


def test_reader_recomputes_distance_and_keeps_a_disagreeing_stored_one(tmp_path):
    path = tmp_path / "preds.jsonl"
    rows = [
        {"id": "1", "set": "s", "gt": "a b", "pred": "a", "distance": 1},
        {"id": "2", "set": "s", "gt": "a b", "pred": "a", "distance": 7},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = read_prediction_rows(path)
    assert [r.distance for r in read] == [1, 1]
    assert [r.stored_distance for r in read] == [None, 7]


def test_row_requires_string_truth():
    with pytest.raises(ValueError, match="'gt' must be a string"):
        PredictionRow.from_dict({"id": "1", "gt": None, "pred": "a"}, "f:1")
