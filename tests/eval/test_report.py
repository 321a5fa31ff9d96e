"""Reports: summary files, the HTML error report, the published comparison table."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from eval.report.compare_html import write_comparison_html
from eval.report.html_report import (
    confusion_table,
    highlight,
    model_label,
    render_html_report,
    write_html_report,
)
from eval.report.katex_assets import KATEX_VERSION, KatexMissing, load_katex
from eval.report.summary import write_summary
from eval.scoring.compare import compare_rows
from eval.scoring.metrics import score_pairs
from eval.scoring.predictions import PredictionRow
from eval.scoring.published import PUBLISHED, canonical_set_name, comparison_table


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


def _items(page: str) -> list[str]:
    """The ``set/id`` of the item rows, in page order."""
    return [
        f"{s}/{i}"
        for s, i in re.findall(r'<tr class="item" data-rank="\d+" data-set="([^"]*)" data-id="([^"]*)"', page)
    ]


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
    path = write_html_report(rows, tmp_path / "r" / "report.html", images_root=tmp_path, worst=3, katex=False)
    page = path.read_text(encoding="utf-8")
    assert page.count("<script>") == 1  # the report's own script; the truth's <script> is text
    assert "a <script> b" not in page and 'data-tex="a &lt;script&gt; b"' in page
    assert page.count('class="thumb" src="data:image/png;base64,') == 1  # only the readable image
    assert "no image" in page and "corrupt_image" in page
    assert _items(page) == ["s/far", "s/img1", "s/sub1"]  # distance 4 first, then by id; 3 shown
    # x read as y twice: the confusion table counts the pair twice.
    assert "<tr><td><code>x</code></td><td><code>y</code></td><td>2</td></tr>" in page
    assert "<tr><td><code>&lt;script&gt;</code></td><td>1</td></tr>" in page  # most often missing
    # Each item carries what the page filters and sorts on.
    assert 'data-id="far" data-task="main" data-dist="4" data-len="4" data-syms="w x y z"' in page


def test_html_report_scores_per_set_and_task_beside_published(tmp_path):
    rows = [PredictionRow(id=str(i), set="crohme2014", gt="a", pred="a" if i < 3 else "b") for i in range(4)]
    rows += [PredictionRow(id="t", set="crohme2014", task="tree_cot", gt="a b c", pred="a")]
    page = render_html_report(rows, katex=False)
    scores = page[
        page.index('<table id="scores">') : page.index("</table>", page.index('<table id="scores">'))
    ]
    main, tree = [line for line in scores.split("<tr>") if line.startswith("<td>crohme2014")]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", main)
    assert cells[:8] == ["crohme2014", "main", "4", "<b>75.00</b>", "100.00", "100.00", "100.00", "0"]
    assert cells[8].startswith("82.05 / 89.45 / 93.00") and "ours on 4 of 986 items" in cells[8]
    assert re.findall(r"<td[^>]*>(.*?)</td>", tree)[:7] == [
        "crohme2014",
        "tree_cot",
        "1",
        "<b>0.00</b>",
        "0.00",
        "100.00",
        "100.00",
    ]
    assert "<tr><td>CoMER</td><td class=num>59.33</td></tr>" in page  # all published figures, this set


def test_html_report_legend_explains_every_mark():
    rows = [
        PredictionRow(id="1", set="s", gt="a b c", pred="a x c d"),
        PredictionRow(id="2", set="s", gt="a b", pred="a"),
    ]
    page = render_html_report(rows, katex=False)
    used = set(re.findall(r'<(del|ins) class="(\w+)">', page[page.index('<table id="items">') :]))
    assert used == {("del", "replace"), ("ins", "replace"), ("ins", "delete"), ("del", "insert")}
    legend = page[
        page.index('<table class="legend">') : page.index("</table>", page.index('<table class="legend">'))
    ]
    for tag, cls in used:
        assert f'<{tag} class="{cls}">' in legend
    assert "not typeset" in legend and "counts as wrong" in legend


def test_html_report_writes_and_embeds_its_plots(tmp_path):
    rows = [PredictionRow(id=str(i), set="s", gt="x + 1" * (i + 1), pred="y + 1") for i in range(6)]
    path = write_html_report(rows, tmp_path / "report.html", katex=False)
    page = path.read_text(encoding="utf-8")
    for name in ("exprate_by_length", "confusion_heatmap"):
        png = (tmp_path / "plots" / f"{name}.png").read_bytes()
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width > 200
        assert f'id="plot-{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page


def test_html_report_has_no_remote_asset_and_forbids_any(tmp_path):
    page = render_html_report([PredictionRow(id="1", set="s", gt="\\frac { a } { b }", pred="a")])
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert not re.search(r"url\((?!data:)", page)  # fonts inlined


def test_title_names_the_model_folder_and_links_its_training_curves(tmp_path):
    model = tmp_path / "runs" / "sft-crohme"
    model.mkdir(parents=True)
    assert model_label(model) == "sft-crohme"
    (model / "checkpoint-200").mkdir()
    assert model_label(model / "checkpoint-200") == "sft-crohme/checkpoint-200"
    assert model_label("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    Image.new("RGB", (50, 30), "white").save(model / "training_loss.png")
    (model / "trainer_log.jsonl").write_text('{"loss": 1.0}\n', encoding="utf-8")
    out = tmp_path / "eval" / "report.html"
    rows = [PredictionRow(id="1", set="s", gt="a", pred="b")]
    page = write_html_report(rows, out, model_dir=model, settings={"prompt": "main"}, katex=False).read_text()
    assert '<a href="../runs/sft-crohme/training_loss.png">' in page
    assert '<a href="../runs/sft-crohme/trainer_log.jsonl">' in page
    assert 'alt="training loss"' in page and '<span class="setting">prompt <code>main</code></span>' in page
    # A checkpoint of the run links the run's curves.
    page = write_html_report(rows, out, model_dir=model / "checkpoint-200", katex=False).read_text()
    assert '<a href="../runs/sft-crohme/trainer_log.jsonl">' in page
    bare = render_html_report(rows, model_dir=tmp_path, katex=False)
    assert "Training curves" not in bare


def test_html_report_says_so_when_katex_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HMER_KATEX_DIR", str(tmp_path / "nowhere"))
    page = render_html_report([PredictionRow(id="1", set="s", gt="a", pred="b")])
    assert '<p class="banner">Formulas are shown as tokens: KaTeX not found' in page
    assert "make install" in page and page.count("<script>") == 1


def test_katex_version_must_be_the_pinned_one(tmp_path):
    (tmp_path / "package.json").write_text('{"version": "0.1.0"}', encoding="utf-8")
    with pytest.raises(KatexMissing, match="pins"):
        load_katex(tmp_path)


def test_katex_stylesheet_inlines_woff2_fonts(tmp_path):
    fonts = tmp_path / "dist" / "fonts"
    fonts.mkdir(parents=True)
    (fonts / "KaTeX_Main-Regular.woff2").write_bytes(b"font")
    (tmp_path / "package.json").write_text(json.dumps({"version": KATEX_VERSION}), encoding="utf-8")
    (tmp_path / "dist" / "katex.min.js").write_text("var katex;", encoding="utf-8")
    css = (
        '@font-face{font-family:KaTeX_Main;src:url(fonts/KaTeX_Main-Regular.woff2) format("woff2"),'
        'url(fonts/KaTeX_Main-Regular.woff) format("woff")}.katex{font:normal 1.21em KaTeX_Main}'
    )
    (tmp_path / "dist" / "katex.min.css").write_text(css, encoding="utf-8")
    assets = load_katex(tmp_path)
    assert assets.css == (
        '@font-face{font-family:KaTeX_Main;src:url(data:font/woff2;base64,Zm9udA==) format("woff2")}'
        ".katex{font:normal 1.21em KaTeX_Main}"
    )


def test_comparison_page_shows_the_paired_counts_and_interval(tmp_path):
    a = [PredictionRow(id=str(i), set="s", gt="a", pred="a" if i % 2 else "b") for i in range(10)]
    b = [PredictionRow(id=str(i), set="s", gt="a", pred="a" if i < 8 else "b") for i in range(10)]
    comparison = compare_rows(a, b, "base", "tuned", n_resamples=200, seed=0)
    path = write_comparison_html(comparison, tmp_path / "compare.html", katex=False)
    page = path.read_text(encoding="utf-8")
    assert "both right / only A / only B / both wrong</td><td class=num>4 / 1 / 4 / 1" in page
    assert f"95% CI {comparison.ci[0]:+.2f} to {comparison.ci[1]:+.2f}" in page
    assert (
        "Only A right (base): 1 items, 1 shown" in page and "Only B right (tuned): 4 items, 4 shown" in page
    )
    assert (tmp_path / "plots" / "paired.png").is_file() and 'id="plot-paired"' in page


def test_confusion_table_uses_wrong_rows_only():
    rows = [
        PredictionRow(id="1", set="s", gt="1 + x", pred="l + x"),
        PredictionRow(id="2", set="s", gt="a", pred="a"),
    ]
    table = confusion_table(rows)
    assert table.most_common() == [("1", "l", 1.0)]


def test_html_report_of_an_all_right_run(tmp_path):
    page = render_html_report([PredictionRow(id="1", set="s", gt="a", pred="a")], katex=False)
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
