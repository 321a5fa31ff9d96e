"""Reports: summary files, the HTML error report, the published comparison table."""

from __future__ import annotations

import json

from PIL import Image

from eval.metrics import score_pairs
from eval.predictions import PredictionRow
from eval.published import PUBLISHED, canonical_set_name, comparison_table
from eval.report import confusion_table, highlight, render_html_report, write_html_report, write_summary


def test_write_summary_writes_markdown_and_json(tmp_path):
    scores = {"crohme2014": score_pairs([("a", "a"), ("a b", "a")]), "mine": score_pairs([("x", "y")])}
    md, js = write_summary(scores, tmp_path / "out", extra={"input": "p.jsonl"}, notes=["a note"])
    text = md.read_text(encoding="utf-8")
    assert "| crohme2014 | 2 | 50.00 |" in text and "| mine | 1 | 0.00 |" in text
    assert "Against published results" in text and "- a note" in text
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["sets"]["crohme2014"]["counts"]["exact"] == 1 and data["input"] == "p.jsonl"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_highlight_marks_only_the_differing_tokens():
    gt_html, pred_html = highlight("x < y + 1", "x < z + 1 2")
    assert gt_html == 'x &lt; <del class="replace">y</del> + 1'
    assert pred_html == 'x &lt; <ins class="replace">z</ins> + 1 <ins class="delete">2</ins>'
    gt_html, pred_html = highlight("a b", "")
    assert gt_html == '<del class="insert">a b</del>' and pred_html == ""


def test_html_report_embeds_images_escapes_text_and_ranks_worst(tmp_path):
    Image.new("L", (60, 20), 0).save(tmp_path / "img1.bmp")
    rows = [
        PredictionRow(id="img1", set="s", gt="a <script> b", pred="a b", image_path="img1.bmp"),
        PredictionRow(
            id="far", set="s", gt="x y z w", pred="", image_path="missing.png", error="corrupt_image"
        ),
        PredictionRow(id="ok", set="s", gt="a", pred="a"),
        PredictionRow(id="sub1", set="s", gt="x + 1", pred="y + 1"),
        PredictionRow(id="sub2", set="s", gt="x - 1", pred="y - 1"),
    ]
    path = write_html_report(rows, tmp_path / "r" / "report.html", images_root=tmp_path, worst=3)
    page = path.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") == 1  # only the readable image
    assert "no image" in page and "corrupt_image" in page
    ranked = [line for line in page.splitlines() if line.startswith("<tr><td>") and "<td><code>s/" in line]
    assert ranked[0].startswith("<tr><td>1</td><td><code>s/far</code>")  # distance 4 first
    assert len(ranked) == 3 and "s/ok" not in page  # the right item is not an error
    # x read as y twice: the confusion table counts the pair twice.
    assert "<tr><td><code>x</code></td><td><code>y</code></td><td>2</td></tr>" in page
    assert "<tr><td><code>&lt;script&gt;</code></td><td>1</td></tr>" in page  # most often missing


def test_confusion_table_uses_wrong_rows_only():
    rows = [
        PredictionRow(id="1", set="s", gt="1 + x", pred="l + x"),
        PredictionRow(id="2", set="s", gt="a", pred="a"),
    ]
    table = confusion_table(rows)
    assert table.most_common() == [("1", "l", 1.0)]


def test_html_report_of_an_all_right_run(tmp_path):
    page = render_html_report([PredictionRow(id="1", set="s", gt="a", pred="a")])
    assert "1 items, 1 exactly right, 0 wrong" in page and "no substitutions" in page


def test_canonical_set_names():
    assert canonical_set_name("crohme_2014_pred") == "crohme2014"
    assert canonical_set_name("CROHME2019_test") == "crohme2019"
    assert canonical_set_name("2016") == "crohme2016"
    assert canonical_set_name("hme100k_test") == "hme100k"
    assert canonical_set_name("crohme2023_test") == "crohme2023_test"
    assert canonical_set_name("im2latex_2014") == "im2latex_2014"


def test_comparison_table_places_our_run_and_flags_partial_sets():
    n = 986
    ours = {
        "crohme2014": score_pairs([("a", "a")] * 809 + [("a", "b")] * (n - 809)),
        "crohme2016": score_pairs([("a", "a")]),
    }
    table = comparison_table(ours, name="ours")
    last = [line for line in table.splitlines() if line.startswith("| **ours**")][0]
    assert last.split("|")[2:4] == [" 82.05 ", " 100.00 (n=1 of 1147) "]
    for pub in PUBLISHED:
        assert f"| {pub.method} |" in table
    assert "| crohme2014: Uni-MuMER 3B | 82.05 | 89.45 | 93.00 |" in table
