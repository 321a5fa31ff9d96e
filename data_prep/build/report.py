"""The build report: what went in, what came out, what was refused and why.

``report.json`` (machine-readable), ``report.md`` (the same for people) and ``vocab.txt``
(``token<TAB>count`` over the training formulas, most frequent first) are written beside the
shards by :mod:`data_prep.build`.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from data_prep.io_utils import write_text_atomic

if TYPE_CHECKING:  # imports for annotations only: build imports this module
    from data_prep.build.recipe import DataRecipe
    from data_prep.build.results import SplitResult

PERCENTILES = (0, 50, 90, 99, 100)
#: Contamination findings listed one by one in the report (all are counted).
MAX_LISTED_FINDINGS = 50


def distribution(values: list[int]) -> dict[str, float]:
    """Count, mean and percentiles (p0 = min, p100 = max) of ``values``."""
    if not values:
        return {"count": 0}
    array = np.asarray(values, dtype=np.float64)
    out: dict[str, float] = {"count": int(array.size), "mean": round(float(array.mean()), 2)}
    for p, v in zip(PERCENTILES, np.percentile(array, PERCENTILES)):
        out[f"p{p}"] = round(float(v), 1)
    return out


def _split_report(result: SplitResult, train_vocab: collections.Counter | None) -> dict[str, Any]:
    rows_by: dict[str, dict[str, int]] = collections.defaultdict(dict)
    tasks: collections.Counter[str] = collections.Counter()
    latex_lengths: list[int] = []
    answer_lengths: dict[str, list[int]] = collections.defaultdict(list)
    widths: list[int] = []
    heights: list[int] = []
    vocab: collections.Counter[str] = collections.Counter()
    inverted: collections.Counter[str] = collections.Counter()
    kept_problems: collections.Counter[str] = collections.Counter()
    kept_examples: list[str] = []
    for stats in result.stats:
        inverted.update(stats.inverted)
        kept_problems.update(stats.kept_answer_problems)
        kept_examples += stats.kept_answer_examples
        for key, n in stats.rows.items():
            source, task = key.split("|")
            rows_by[source][task] = rows_by[source].get(task, 0) + n
            tasks[task] += n
        latex_lengths += stats.latex_lengths
        for task, lengths in stats.answer_lengths.items():
            answer_lengths[task] += lengths
        widths += stats.widths
        heights += stats.heights
        vocab.update(stats.vocab)
    report: dict[str, Any] = {
        "rows": sum(tasks.values()),
        "shards": list(result.shards),
        "rows_by_task": dict(tasks),
        "rows_by_source_and_task": {k: dict(v) for k, v in rows_by.items()},
        "latex_tokens": distribution(latex_lengths),
        "answer_tokens_by_task": {task: distribution(v) for task, v in answer_lengths.items()},
        "image_width": distribution(widths),
        "image_height": distribution(heights),
        "image_pixels": distribution([w * h for w, h in zip(widths, heights)]),
        "vocabulary_size": len(vocab),
        "images_inverted": {"total": sum(inverted.values()), "by_source": dict(sorted(inverted.items()))},
        "rejected_input": result.input_rejects.to_dict(),
        "rejected_tasks": result.task_rejects.to_dict(),
        "excluded": result.excluded.to_dict(),
        # answers: published: answers kept byte-equal to their file although a check would refuse them.
        "published_answers_with_problems": {
            "total": sum(kept_problems.values()),
            "by_reason": dict(kept_problems.most_common()),
            "examples": kept_examples[:5],
        },
    }
    if result.reader_rejects_in:
        report["reader_rejections_counted_in"] = result.reader_rejects_in
    if train_vocab is not None:
        unseen = {token: n for token, n in vocab.most_common() if token not in train_vocab}
        report["tokens_not_in_train"] = unseen
    return report


def _vocab(result: SplitResult) -> collections.Counter:
    vocab: collections.Counter[str] = collections.Counter()
    for stats in result.stats:
        vocab.update(stats.vocab)
    return vocab


def build_report(
    recipe: DataRecipe, results: list[SplitResult], recipe_hash: str, failed: str | None = None
) -> dict[str, Any]:
    train = next((r for r in results if r.name == "train"), None)
    train_vocab = _vocab(train) if train is not None else None
    splits = {r.name: _split_report(r, train_vocab if r is not train else None) for r in results}
    findings = [f for r in results for s in r.stats for f in s.contamination]
    by_pair: dict[str, dict[str, int]] = collections.defaultdict(lambda: collections.defaultdict(int))
    for finding in findings:
        by_pair[f"{finding['train_source']} -> {finding['test_set']}"][finding["kind"]] += 1
    vocab = train_vocab if train_vocab is not None else sum(map(_vocab, results), collections.Counter())
    return {
        "recipe": recipe.path,
        "recipe_hash": recipe_hash,
        "status": f"failed: {failed} was not kept (see the error message)" if failed else "ok",
        "splits": splits,
        "contamination": {
            "policy": {
                "image": recipe.contamination.image,
                "formula": recipe.contamination.formula,
                "perceptual_max_distance": recipe.contamination.perceptual_max_distance,
                "rendered_formula": recipe.contamination.rendered_formula,
            },
            "findings": len(findings),
            "excluded": sum(1 for f in findings if f["excluded"]),
            # Renderings of a test-set formula kept out of training (synthetic sources).
            "rendered_held_back": sum(1 for f in findings if f["excluded"] and f.get("rendered")),
            "by_train_source_and_test_set": {k: dict(v) for k, v in by_pair.items()},
            "first_findings": findings[:MAX_LISTED_FINDINGS],
        },
        "vocabulary": {"size": len(vocab), "file": "vocab.txt", "counts": dict(vocab.most_common())},
    }


def _distribution_row(name: str, d: dict[str, float]) -> str:
    if not d.get("count"):
        return f"| {name} | 0 | | | | | | |"
    cells = [f"{d['count']:,}", f"{d['mean']:g}"] + [f"{d[f'p{p}']:g}" for p in PERCENTILES]
    return f"| {name} | " + " | ".join(cells) + " |"


def _rejects_md(title: str, rejects: dict[str, Any]) -> list[str]:
    if not rejects["total"]:
        return []
    lines = [f"**{title}: {rejects['total']:,}**", ""]
    for group in rejects["by_source_and_reason"]:
        lines.append(f"- `{group['source']}` {group['reason']}: {group['count']:,}")
        lines += [f"  - {example}" for example in group["examples"]]
    return lines + [""]


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Dataset build report",
        "",
        f"Recipe `{report['recipe']}` (hash `{report['recipe_hash']}`), status: **{report['status']}**.",
        "",
        "## Rows",
        "",
        "| split | source | task | rows |",
        "|---|---|---|---:|",
    ]
    for split, data in report["splits"].items():
        for source, tasks in data["rows_by_source_and_task"].items():
            for task, n in tasks.items():
                lines.append(f"| {split} | {source} | {task} | {n:,} |")
        lines.append(f"| **{split}** | | all | **{data['rows']:,}** |")
    header = "| | count | mean | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |"
    rule = "|---" * (3 + len(PERCENTILES)) + "|"
    for split, data in report["splits"].items():
        lines += ["", f"## Split `{split}`", "", f"Shards: {len(data['shards'])}.", "", header, rule]
        lines.append(_distribution_row("LaTeX tokens (main)", data["latex_tokens"]))
        for task, d in data["answer_tokens_by_task"].items():
            lines.append(_distribution_row(f"answer tokens ({task})", d))
        for key in ("image_width", "image_height", "image_pixels"):
            lines.append(_distribution_row(key.replace("_", " "), data[key]))
        lines.append("")
        inverted = data["images_inverted"]
        lines += [
            f"Images inverted to dark ink on a light page: {inverted['total']:,}"
            + "".join(f"; `{source}` {n:,}" for source, n in inverted["by_source"].items()),
            "",
        ]
        if data.get("reader_rejections_counted_in"):
            lines += [
                "Its reader's rejections are counted once, in split "
                f"`{data['reader_rejections_counted_in']}` (the same source feeds both).",
                "",
            ]
        kept = data.get("published_answers_with_problems") or {}
        if kept.get("total"):
            reasons = ", ".join(f"{r}: {n:,}" for r, n in kept["by_reason"].items())
            lines += [
                f"Published answers kept verbatim despite a problem (`answers: published`): "
                f"{kept['total']:,} ({reasons}); e.g. " + "; ".join(f"`{e}`" for e in kept["examples"][:3]),
                "",
            ]
        lines += _rejects_md("Rejected input", data["rejected_input"])
        lines += _rejects_md("Auxiliary records not derived", data["rejected_tasks"])
        lines += _rejects_md("Excluded from training (test-set contamination)", data["excluded"])
        unseen = data.get("tokens_not_in_train")
        if unseen:
            shown = ", ".join(f"`{t}` ({n})" for t, n in list(unseen.items())[:30])
            lines += [f"Tokens absent from the training formulas: {len(unseen)}: {shown}", ""]
    c = report["contamination"]
    lines += [
        "## Contamination",
        "",
        f"Policy: image match -> {c['policy']['image']}, formula match -> {c['policy']['formula']}, "
        f"perceptual distance <= {c['policy']['perceptual_max_distance']} bits.",
        "",
        f"Findings: {c['findings']:,}; training records excluded: {c['excluded']:,}.",
        "",
    ]
    if c.get("rendered_held_back"):
        lines += [
            f"Renderings of test-set formulas held back from training: {c['rendered_held_back']:,} "
            f"(policy rendered_formula -> {c['policy']['rendered_formula']}).",
            "",
        ]
    for pair, kinds in c["by_train_source_and_test_set"].items():
        lines.append(f"- {pair}: " + ", ".join(f"{k} {n:,}" for k, n in kinds.items()))
    lines += [
        "",
        "## Vocabulary",
        "",
        f"{report['vocabulary']['size']:,} distinct tokens (see `vocab.txt`).",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    out_dir = Path(out_dir)
    counts = report["vocabulary"]["counts"]
    write_text_atomic(out_dir / "vocab.txt", "".join(f"{t}\t{n}\n" for t, n in counts.items()))
    write_text_atomic(out_dir / "report.json", json.dumps(report, indent=1, ensure_ascii=False))
    write_text_atomic(out_dir / "report.md", to_markdown(report))
