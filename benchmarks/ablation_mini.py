"""``make ablation-mini``: Uni-MuMER's ablation in miniature, on a CPU.

The paper's ablation (CROHME-only training, mean ExpRate over CROHME 2014/16/19) trains the main
task alone and with each auxiliary task added. Here the same arms train the tiny Qwen2.5-VL on
rendered formulas with 2-D structure (``recipes/data/ablation_mini.yaml``), each with the same step
budget and the same main-task rows (one build carries every task; an arm picks its tasks with the
training recipe's ``train_tasks``):

``main``            the main task only
``tree_cot``        + Tree-CoT
``counting``        + symbol counting
``edl_mined``       + error detection and correction, from the model's own wrong answers, mined by
                    k-fold cross-prediction (``eval.mine_errors``, i.e. ``make mine-errors``, as the
                    reference did) on the main-only recipe
``edl_synthetic``   + error detection and correction from synthetic errors (a second variant)
``all``             + all three (error-driven: the mined variant)

Each arm runs for every seed (a fresh random tiny model and data order per seed), is scored through
``eval.evaluate`` on the held-out formulas and the swapped-image control, and is compared with
``main`` by the project's own compare (:func:`eval.scoring.compare.compare_rows`, items of all seeds
pooled and paired by seed and id): paired bootstrap 95% interval of the difference, exact McNemar p,
for ExpRate and for <=1.

    python -m benchmarks.ablation_mini                   # the ablation (~2 h on 2 cores)
    python -m benchmarks.ablation_mini --seeds 2         # one process per seed, side by side
    python -m benchmarks.ablation_mini --smoke           # the same chain, tiny (CI, < 1 min)

Resumable arm by arm: a finished arm (its ``figures.json``) is not run again; the table is written
from every finished arm each time (``benchmarks/results/ablation_mini.json``, and ``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.learning.experiment import Arm, ExperimentError, check, prediction_rows, run_arm
from benchmarks.learning.results import (
    REPO,
    contamination,
    provenance,
    smoke_recipe,
    start_commit,
    write_recipe,
)

DATA_RECIPE = REPO / "recipes" / "data" / "ablation_mini.yaml"
TRAIN_RECIPE = REPO / "recipes" / "tiny" / "ablation_mini.yaml"
HELDOUT = "ablation_heldout"
RESULTS = REPO / "benchmarks" / "results" / "ablation_mini.json"
MODEL_SIZE = "reader"
ERROR_TASKS = ["error_detection", "error_correction"]


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    name: str
    tasks: tuple[str, ...]
    #: Which build: ``synthetic`` (the recipe's synthetic errors) or ``mined`` (the mined errors).
    data: str = "synthetic"


ARMS = (
    ArmSpec("main", ("main",)),
    ArmSpec("tree_cot", ("main", "tree_cot")),
    ArmSpec("counting", ("main", "counting")),
    ArmSpec("edl_mined", ("main", *ERROR_TASKS), "mined"),
    ArmSpec("edl_synthetic", ("main", *ERROR_TASKS)),
    ArmSpec("all", ("main", "tree_cot", "counting", *ERROR_TASKS), "mined"),
)
ARM_NAMES = tuple(a.name for a in ARMS)
SEEDS = (1, 2, 3)
MINING_FOLDS = 2
#: A dozen renderings decide no reject fraction: the smoke build tolerates any.
SMOKE_BUILD = ["--max-reject-fraction", "1"]
SMOKE_COUNTS = {"ablation_train": 24, HELDOUT: 8}
SMOKE_TRAIN = [
    "--max_steps",
    "3",
    "--logging_steps",
    "3",
    "--per_device_train_batch_size",
    "4",
    "--eval_strategy",
    "no",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ablation_mini", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few rows and steps: checks the chain, not the effect"
    )
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds to run now (default 1,2,3; --smoke: 1)"
    )
    parser.add_argument(
        "--arms", default=",".join(ARM_NAMES), help=f"comma-separated arms ({', '.join(ARM_NAMES)})"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="default outputs/bench/ablation_mini[_smoke]"
    )
    parser.add_argument(
        "--results", type=Path, default=None, help="results JSON (default: see the module docstring)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the table from the finished arms; train nothing"
    )
    parser.add_argument("--progress", action="store_true", help="progress bars (default: log lines only)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def _csv(text: str, known: tuple[str, ...] | None = None, what: str = "") -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(values) - set(known)) if known else []
    if unknown:
        raise SystemExit(f"ablation-mini: unknown {what} {unknown}; known: {', '.join(known or ())}")
    return values


class Layout:
    """Where everything of one ablation lives under its output folder."""

    def __init__(self, out: Path, smoke: bool) -> None:
        self.out = out
        self.smoke = smoke
        self.data_synthetic = out / "data"
        self.data_mined = out / "data_mined"
        self.mining = out / "mining"

    def model(self, seed: int) -> Path:
        return self.out / f"tiny-{MODEL_SIZE}-seed{seed}"

    def arm(self, spec: ArmSpec, seed: int) -> Arm:
        overrides = ["--seed", str(seed), "--train_tasks", *spec.tasks]
        return Arm(
            name=f"{spec.name}/seed{seed}",
            data_dir=self.data_mined if spec.data == "mined" else self.data_synthetic,
            train_recipe=TRAIN_RECIPE,
            model=self.model(seed),
            out_dir=self.out / "arms" / spec.name / f"seed{seed}",
            heldout=HELDOUT,
            train_overrides=overrides + (SMOKE_TRAIN if self.smoke else []),
        )


def data_step(out: Path):
    """One process at a time prepares the models and data the arms share. Processes that split the
    arms (``--seeds``, ``--arms``) wait here for the one preparing them (its output folder's lock,
    :func:`data_prep.output_lock.output_lock`); it leaves them done (each step resumes or skips),
    and the next goes through without redoing any."""
    from data_prep.output_lock import output_lock

    return output_lock(out, what="preparation of the ablation's shared models and data", wait=True)


def build_data(layout: Layout, progress: bool) -> None:
    """The synthetic-errors build, the mining on its main-task rows, then the mined-errors build."""
    from data_prep import build
    from data_prep.recipe_file import read_recipe_mapping
    from eval.mining import mine_errors

    quiet = [] if progress else ["--no-progress"]
    out = layout.out
    recipe = (
        smoke_recipe(DATA_RECIPE, out / "data_recipe.yaml", SMOKE_COUNTS) if layout.smoke else DATA_RECIPE
    )
    print(f"rendering the formulas with every task, synthetic errors ({recipe}) -> {layout.data_synthetic}")
    check(
        build.main(
            [
                "--config",
                str(recipe),
                "--output-dir",
                str(layout.data_synthetic),
                *quiet,
                *SMOKE_BUILD * layout.smoke,
            ]
        ),
        "building the data",
    )
    print(
        f"mining the main-task model's own errors ({MINING_FOLDS}-fold cross-prediction) -> {layout.mining}"
    )
    steps = (
        ["--max_steps", "3", "--per_device_train_batch_size", "4", "--eval_strategy", "no"]
        if layout.smoke
        else []
    )
    mining_args = [
        "--data-dir", str(layout.data_synthetic), "--train-recipe", str(TRAIN_RECIPE),
        "--output-dir", str(layout.mining), "--folds", str(MINING_FOLDS), "--backend", "hf",
        "--samples", "2", "--max-new-tokens", "48", "--batch-size", "32",
        *([] if progress else ["--no-progress"]),
        "--", "--model_name_or_path", str(layout.model(SEEDS[0])), "--eval_strategy", "no",
        "--disable_tqdm", "true", *steps,
    ]  # fmt: skip
    check(mine_errors.main(mining_args), "mining errors")
    mined = (layout.mining / mine_errors.MINED_FILE).resolve()
    data = read_recipe_mapping(recipe, what="data recipe")
    for source in data["train"]:
        tasks = dict(source.get("tasks") or {})
        for task in ERROR_TASKS:
            tasks[task] = {"predictions": [str(mined)]}
        source["tasks"] = tasks
    mined_recipe = out / "data_recipe_mined.yaml"
    write_recipe(mined_recipe, data)
    print(f"building the data again with the mined errors ({mined_recipe}) -> {layout.data_mined}")
    check(
        build.main(
            [
                "--config",
                str(mined_recipe),
                "--output-dir",
                str(layout.data_mined),
                *quiet,
                *SMOKE_BUILD * layout.smoke,
            ]
        ),
        "building the mined data",
    )


def compare_with_main(layout: Layout, seeds: list[int]) -> list[dict[str, Any]]:
    """One row per arm with figures: pooled ExpRate and <=1 over its finished seeds, each with a
    bootstrap 95% interval, and, against ``main`` on the seeds both finished, the paired bootstrap
    interval of the difference and the exact McNemar p."""
    import json

    import numpy as np

    from benchmarks.learning.experiment import FIGURES
    from eval.scoring.compare import bootstrap_ci, compare_rows

    def rows_of(spec: ArmSpec, seed: int) -> list | None:
        arm = layout.arm(spec, seed)
        if not (arm.out_dir / FIGURES).is_file():
            return None
        rows = prediction_rows(arm.out_dir / "eval" / "heldout", HELDOUT)
        return [dataclasses.replace(r, set=f"seed{seed}") for r in rows]  # pair by (seed, id)

    def control_of(spec: ArmSpec, seed: int) -> dict[str, Any]:
        return json.loads((layout.arm(spec, seed).out_dir / FIGURES).read_text())["control"]

    main_spec = ARMS[0]
    main_rows = {s: rows_of(main_spec, s) for s in seeds}
    table = []
    for spec in ARMS:
        done = {s: r for s in seeds if (r := rows_of(spec, s)) is not None}
        if not done:
            continue
        pooled = [row for s in sorted(done) for row in done[s]]
        entry: dict[str, Any] = {
            "name": spec.name,
            "tasks": list(spec.tasks),
            "data": spec.data,
            "seeds": sorted(done),
        }
        for key, limit in (("exprate", 0), ("le1", 1)):
            right = np.array([r.within(limit) for r in pooled])
            entry[key] = round(100 * float(right.mean()), 2)
            entry[f"{key}_ci"] = list(bootstrap_ci(right, 10_000, seed=0))
            entry[f"{key}_by_seed"] = {
                f"seed{s}": round(100 * float(np.mean([r.within(limit) for r in done[s]])), 2)
                for s in sorted(done)
            }
        entry["n"] = len(pooled)
        entry["control_exprate_by_seed"] = {f"seed{s}": control_of(spec, s)["exprate"] for s in sorted(done)}
        paired = sorted(s for s in done if main_rows.get(s) is not None)
        if spec.name != main_spec.name and paired:
            base = [row for s in paired for row in main_rows[s]]
            mine = [row for s in paired for row in done[s]]
            for key, limit in (("", 0), ("le1_", 1)):
                comparison = compare_rows(
                    base, mine, "main", spec.name, n_resamples=10_000, seed=0, max_distance=limit
                )
                entry[f"{key}diff_vs_main"] = comparison.diff
                entry[f"{key}diff_ci"] = list(comparison.ci) if comparison.ci else None
                entry[f"{key}p_vs_main"] = comparison.mcnemar_p
            entry["paired_seeds"] = paired
        # The keys the results JSON promises: "ci" is the paired interval of the difference from main
        # (main's own ExpRate interval for main itself); "p_vs_main" is None for main.
        entry["ci"] = (
            entry.get("diff_ci", entry["exprate_ci"]) if spec.name != main_spec.name else entry["exprate_ci"]
        )
        entry.setdefault("p_vs_main", None)
        table.append(entry)
    return table


def to_markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| arm | tasks | seeds | n | ExpRate [95% CI] | vs main [paired 95% CI] | McNemar p | <=1 | <=1 vs main [CI] | <=1 p | control ExpRate by seed |",
        "|---|---|---|---:|---|---|---:|---:|---|---:|---|",
    ]
    for e in table:
        low, high = e["exprate_ci"]
        control = ", ".join(f"{v:.2f}" for v in e["control_exprate_by_seed"].values())
        lines.append(
            f"| {e['name']} | {' + '.join(e['tasks'])}{' (mined)' if e['data'] == 'mined' else ''} | "
            f"{len(e['seeds'])} | {e['n']} | {e['exprate']:.2f} [{low:.2f}, {high:.2f}] | {_diff(e, '')} | "
            f"{_p(e, 'p_vs_main')} | {e['le1']:.2f} | {_diff(e, 'le1_')} | {_p(e, 'le1_p_vs_main')} | {control} |"
        )
    return "\n".join(lines) + "\n"


def _diff(entry: dict[str, Any], prefix: str) -> str:
    if f"{prefix}diff_vs_main" not in entry:
        return "-"
    low, high = entry[f"{prefix}diff_ci"] or (float("nan"), float("nan"))
    return f"{entry[f'{prefix}diff_vs_main']:+.2f} [{low:+.2f}, {high:+.2f}]"


def _p(entry: dict[str, Any], key: str) -> str:
    return "-" if entry.get(key) is None else f"{entry[key]:.3g}"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.learning.kernels import pin_cpu_kernels

    pin_cpu_kernels()
    from data_prep.io_utils import write_json_atomic, write_text_atomic
    from train.tiny_model import build_tiny_model

    args = parse_args(argv)
    started, git = time.time(), start_commit()
    default_seeds = "1" if args.smoke else ",".join(map(str, SEEDS))
    seeds = [int(s) for s in _csv(args.seeds or default_seeds, what="seeds")]
    arm_names = _csv(args.arms, ARM_NAMES, "arms")
    out = args.output_dir or REPO / "outputs" / "bench" / (
        "ablation_mini_smoke" if args.smoke else "ablation_mini"
    )
    results = args.results or (out / "ablation_mini.json" if args.smoke else RESULTS)
    layout = Layout(out, args.smoke)
    try:
        if not args.report_only:
            with data_step(out):
                for seed in sorted(set(seeds) | {SEEDS[0]}):  # the mining trains from seed 1's model
                    if not (layout.model(seed) / "config.json").is_file():
                        build_tiny_model(layout.model(seed), seed=seed, size=MODEL_SIZE)
                build_data(layout, args.progress)
            for seed in seeds:
                for spec in ARMS:
                    if spec.name not in arm_names:
                        continue
                    print(f"arm {spec.name}, seed {seed}: training on {' + '.join(spec.tasks)}")
                    figures = run_arm(layout.arm(spec, seed), progress=args.progress)
                    held, control = figures["heldout"], figures["control"]
                    print(
                        f"arm {spec.name}, seed {seed}: held-out ExpRate {held['exprate']:.2f} "
                        f"(<=1 {held['le1']:.2f}, n={held['n']}), control {control['exprate']:.2f}"
                    )
    except ExperimentError as err:
        print(f"ablation-mini: {err}")
        return 1
    table = compare_with_main(layout, sorted(set(SEEDS) | set(seeds)))
    missing = [
        f"{s.name}/seed{x}"
        for s in ARMS
        for x in SEEDS
        if not any(e["name"] == s.name and x in e["seeds"] for e in table)
    ]
    summary = {
        "benchmark": "ablation_mini",
        "smoke": bool(args.smoke),
        "model_size": MODEL_SIZE,
        "arms": table,
        "missing_arms": missing,
        "mining": _mining_report(layout),
        "contamination": contamination(layout.data_synthetic)
        if (layout.data_synthetic / "report.json").is_file()
        else None,
        "data_recipe": str(DATA_RECIPE.relative_to(REPO)),
        "train_recipe": str(TRAIN_RECIPE.relative_to(REPO)),
        **provenance("benchmarks.ablation_mini", args.argv, started, time.time(), git),
    }
    write_json_atomic(results, summary)
    write_text_atomic(results.with_suffix(".md"), to_markdown(table))
    print(to_markdown(table))
    if missing:
        print(f"ablation-mini: {len(missing)} arm run(s) not finished yet: {', '.join(missing)}")
    return 0


def _mining_report(layout: Layout) -> dict[str, Any] | None:
    import json

    from eval.mining.layout import REPORT_FILE

    path = layout.mining / REPORT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


if __name__ == "__main__":
    raise SystemExit(main())
