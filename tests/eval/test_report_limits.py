"""Reports embed only what they own; over-long fields are cut; over-long rows are rejected and counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

from PIL import Image

from data_prep.predictions import MAX_PREDICTION_TOKENS, TOO_LONG, iter_prediction_rows
from data_prep.rejects import Rejects
from eval.report.report_images import OUTSIDE
from eval.score import main as score_main


def _image(path: Path, colour: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 30), (colour, colour, colour)).save(path)
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_report_embeds_only_images_inside_its_folders(tmp_path):
    secret = _image(tmp_path / "private" / "secret.png", 10)
    preds_dir = tmp_path / "run"
    _image(preds_dir / "images" / "own.png", 200)
    rows = [
        {"id": "own", "set": "s", "gt": "a b", "pred": "a", "image_path": "images/own.png"},
        {"id": "abs", "set": "s", "gt": "a b", "pred": "b", "image_path": str(secret)},
        {"id": "up", "set": "s", "gt": "a b", "pred": "c", "image_path": "../private/secret.png"},
        {"id": "link", "set": "s", "gt": "a b", "pred": "d", "image_path": "images/link.png"},
    ]
    (preds_dir / "images" / "link.png").symlink_to(secret)  # a symlink out of the folder counts too
    pred = _write(preds_dir / "s.main.jsonl", rows)
    assert score_main([str(pred), "--output-dir", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count('<img class="thumb"') == 1
    assert html.count(f'class="muted not-embedded">{OUTSIDE.replace(chr(39), "&#x27;")}') == 3
    assert "3 image not embedded" in html


def test_long_fields_are_cut_with_a_mark(tmp_path):
    from eval.report.html_page import MAX_FIELD_CHARS

    long_gt = " ".join(["x"] * 3000)  # 5,999 characters, well under the token limit
    pred = _write(tmp_path / "s.main.jsonl", [{"id": "a", "set": "s", "gt": long_gt, "pred": "x"}])
    assert score_main([str(pred), "--output-dir", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"[cut, {len(long_gt):,} chars]" in html
    assert long_gt not in html and long_gt[:MAX_FIELD_CHARS] in html


def test_a_huge_truth_line_is_rejected_and_counted_not_scored(tmp_path):
    huge = " ".join(["x"] * 200_000)
    rows = [
        {"id": "ok", "set": "s", "gt": "a", "pred": "a"},
        {"id": "huge", "set": "s", "gt": huge, "pred": "x"},
    ]
    pred = _write(tmp_path / "s.main.jsonl", rows)
    started = time.perf_counter()
    assert score_main([str(pred), "--output-dir", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    assert time.perf_counter() - started < 20
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sets"]["s"]["n"] == 1
    (reject,) = summary["input"]["rejects"]["by_source_and_reason"]
    assert reject["reason"] == TOO_LONG and reject["count"] == 1 and "200,000 tokens" in reject["examples"][0]
    assert "rejected as too_long: 1" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "report.html").stat().st_size < 2_000_000

    rejects = Rejects()
    assert [r.id for r in iter_prediction_rows(pred, rejects)] == ["ok"]
    assert rejects.by_reason() == {TOO_LONG: 1}


def test_other_formats_share_the_limit(tmp_path):
    huge = " ".join(["y"] * (MAX_PREDICTION_TOKENS + 1))
    unimumer = tmp_path / "crohme_2014_pred.json"
    unimumer.write_text(
        json.dumps([{"img_id": "a", "gt": "a", "pred": "a"}, {"img_id": "b", "gt": "b", "pred": huge}])
    )
    assert score_main([str(unimumer), "--output-dir", str(tmp_path / "u"), "--bootstrap", "0"]) == 0
    summary = json.loads((tmp_path / "u" / "summary.json").read_text())
    assert summary["input"]["rejects"]["by_source_and_reason"][0]["reason"] == TOO_LONG
    tsv, gt = tmp_path / "p.txt", tmp_path / "caption.txt"
    tsv.write_text(f"a\ta\nb\t{huge}\n")
    gt.write_text("a\ta\nb\tb\n")
    assert (
        score_main([str(tsv), "--gt", str(gt), "--output-dir", str(tmp_path / "t"), "--bootstrap", "0"]) == 0
    )
    reasons = json.loads((tmp_path / "t" / "summary.json").read_text())["input"]["rejects"]
    assert TOO_LONG in {r["reason"] for r in reasons["by_source_and_reason"]}


def test_comparison_page_cuts_long_fields(tmp_path):
    long_gt = " ".join(["z"] * 2500)
    a = _write(tmp_path / "a" / "s.main.jsonl", [{"id": "1", "set": "s", "gt": long_gt, "pred": long_gt}])
    b = _write(tmp_path / "b" / "s.main.jsonl", [{"id": "1", "set": "s", "gt": long_gt, "pred": "z"}])
    assert score_main([str(a), str(b), "--output-dir", str(tmp_path / "cmp"), "--bootstrap", "0"]) == 0
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "[cut, 4,999 chars]" in html and long_gt not in html
