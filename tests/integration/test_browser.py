"""In a real browser (Debian's headless Chromium, driven over the DevTools protocol): an evaluation's
report.html opened from disk typesets its formulas with no network request, and sorts and filters.

Outside CI these tests are skipped, saying why, where chromium (or the pinned KaTeX) is absent;
in CI (``CI=true``) their absence is a failure: ``.ci/run`` installs chromium, ``make test`` KaTeX.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from data_prep.contract import TASK_MAIN
from eval.backends import Backend
from eval.evaluate import EvalArgs, evaluate
from eval.report.katex_assets import KatexMissing, load_katex
from eval.scoring.predictions import read_prediction_rows
from scripts.headless import HeadlessChromium, find_chromium
from tests.browser_support import require

SET = "crohme2014_sample"
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser():
    require(find_chromium() is not None, "chromium is not installed (apt-get install -y chromium)")
    try:
        load_katex()
    except KatexMissing as err:
        require(False, str(err))
    with HeadlessChromium() as chromium:
        yield chromium


def _key(image) -> str:
    return hashlib.sha1(image.convert("RGB").tobytes()).hexdigest()


class MistakenBackend(Backend):
    """Answers the truth, a substitution, two extra tokens or LaTeX KaTeX cannot parse, in turn."""

    name = "mistaken"
    chunk_size = 4

    def __init__(self, truths: dict[str, str]):
        self.truths = truths
        self.seen = 0

    def _generate(self, images, prompts):
        answers = []
        for image in images:
            gt = self.truths[_key(image)].split()
            kind = self.seen % 4
            self.seen += 1
            if kind == 1:  # one letter or digit read as another (the LaTeX stays valid)
                i = next((i for i, t in enumerate(gt) if t.isalnum() and len(t) == 1), None)
                gt = gt + ["x"] if i is None else [*gt[:i], "y" if gt[i] == "x" else "x", *gt[i + 1 :]]
            elif kind == 2:  # two extra tokens
                gt = [*gt, "+", "1"]
            elif kind == 3:
                gt = ["\\frac", "{", *gt]  # an unclosed group: KaTeX refuses it
            answers.append(" ".join(gt))
        return answers


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory, crohme_sample_data) -> Path:
    """A real evaluation of the bundled CROHME sample (built by the data build) with scripted answers."""
    from data_prep.dataset import load_split

    data = crohme_sample_data
    truths = {_key(r["image"]): r["answer"] for r in load_split(data, SET) if r["task"] == TASK_MAIN}
    out = tmp_path_factory.mktemp("eval")
    args = EvalArgs(model="mistaken", sets=SET, output_dir=str(out), data_dir=str(data), progress=False)
    evaluate(args, backend=MistakenBackend(truths))
    return out


def test_report_typesets_every_formula_from_disk_without_network(browser, evaluation):
    report = evaluation / "report.html"
    rows = read_prediction_rows(evaluation / f"{SET}.{TASK_MAIN}.jsonl")
    wrong = [r for r in rows if r.distance]
    unparsable = [r for r in wrong if r.pred.startswith("\\frac {")]
    assert wrong and unparsable  # the run has both kinds of error to show

    requests = browser.open(report.as_uri())
    remote = [url for url in requests if not url.startswith(("file:", "data:"))]
    assert requests[0] == report.as_uri() and remote == []

    state = browser.evaluate(
        """(() => {
          const items = document.querySelectorAll('#items tr.item');
          const tex = document.querySelectorAll('#items .tex');
          const truths = [...items].map(tr => tr.querySelector('.pair > div:first-child .tex'));
          return {
            items: items.length,
            tex: tex.length,
            ok: document.querySelectorAll('#items .tex.tex-ok').length,
            failed: document.querySelectorAll('#items .tex.tex-failed').length,
            marked: document.querySelectorAll('#items .tex.tex-failed .mark').length,
            okWithKatex: document.querySelectorAll('#items .tex.tex-ok .katex .katex-html').length,
            truthsOk: truths.filter(t => t.classList.contains('tex-ok')).length,
            scoresRows: document.querySelectorAll('#scores tr').length,
            plots: [...document.querySelectorAll('img.plot')].filter(i => i.naturalWidth > 100).length,
            thumbs: [...document.querySelectorAll('img.thumb')].filter(i => i.naturalWidth > 0).length,
            katexFont: document.fonts.check('16px KaTeX_Main'),
          };
        })()"""
    )
    assert state["items"] == len(wrong)
    assert state["tex"] == 2 * len(wrong) == state["ok"] + state["failed"]  # every formula shown
    assert state["truthsOk"] == len(wrong)  # every CROHME truth typesets
    assert state["failed"] == state["marked"] == len(unparsable)  # only the broken ones fall back
    assert state["okWithKatex"] == state["ok"]
    assert state["scoresRows"] == 2 and state["plots"] >= 1 and state["thumbs"] == len(wrong)
    assert state["katexFont"]  # the inlined fonts loaded


def test_report_filters_and_sorts_in_the_browser(browser, evaluation):
    report = evaluation / "report.html"
    rows = [r for r in read_prediction_rows(evaluation / f"{SET}.{TASK_MAIN}.jsonl") if r.distance]
    expected = [r for r in rows if "\\frac" in r.gt.split() + r.pred.split() and r.distance >= 2]
    browser.open(report.as_uri() + "#sym=" + "%5Cfrac" + "&dmin=2&sort=len-asc")
    shown = browser.evaluate(
        "[...document.querySelectorAll('#items tr.item:not(.hidden)')].map(tr => +tr.dataset.len)"
    )
    assert len(shown) == len(expected) > 0
    assert shown == sorted(len(r.gt.split()) for r in expected)
    assert browser.evaluate("document.getElementById('shown-count').textContent") == (
        f"{len(expected)} of {len(rows)} items shown"
    )
