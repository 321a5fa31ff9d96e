"""Every evaluation command reads its options from ``--config YAML`` as training does, a flag on the
command line overrides the file, and bad values end in one line."""

from __future__ import annotations

import pytest
import yaml

from eval import evaluate
from eval.mining import mine_errors
from eval.serve import app, client, predict


def _config(tmp_path, **options) -> str:
    path = tmp_path / "options.yaml"
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


def test_evaluate_reads_the_config_and_flags_override_it(tmp_path):
    config = _config(tmp_path, model="runs/a", sets="crohme2014", backend="hf", batch_size=4, vote=True)
    args, options = evaluate.parse_args(["--config", config, "--batch-size", "2", "--sets", "crohme2016"])
    assert (args.model, args.sets, args.vote) == ("runs/a", "crohme2016", True)
    assert (options.backend, options.batch_size, options.max_new_tokens) == ("hf", 2, None)
    # Without a config, the documented flags and defaults are as they were.
    args, options = evaluate.parse_args(
        ["--model", "m", "--sets", "s", "--output-root", "o", "--no-progress"]
    )
    assert (args.output_root, args.progress, args.task, options.backend, options.batch_size) == (
        "o",
        False,
        "main",
        "auto",
        8,
    )


def test_mining_reads_the_config_and_flags_override_it(tmp_path):
    config = _config(
        tmp_path,
        data_dir="d",
        train_recipe="r.yaml",
        output_dir="o",
        folds=5,
        only_folds=[1, 3],
        train_overrides="--max_steps 5",
        seed=7,
    )
    args, options = mine_errors.parse_args(["--config", config, "--folds", "4", "--seed", "9"])
    assert (args.data_dir, args.folds, args.only_folds) == ("d", 4, [1, 3])
    assert args.train_overrides == ["--max_steps", "5"]
    assert (options.seed, options.max_new_tokens) == (9, 256)


def test_predict_reads_the_config_and_flags_override_it(tmp_path):
    config = _config(tmp_path, model="exports/merged", task="counting", invert="false", max_new_tokens=64)
    args, options = predict.parse_args(["--config", config, "a.png", "--invert", "true", "b/"])
    assert (args.model, args.task, args.invert, args.inputs) == (
        "exports/merged",
        "counting",
        "true",
        ["a.png", "b/"],
    )
    assert options.max_new_tokens == 64


def test_client_reads_the_config_and_flags_override_it(tmp_path):
    config = _config(tmp_path, url="http://gpu:8000", model="served", raw=True, inputs=["x.png"])
    args = client.parse_args(["--config", config, "--url", "http://other:9000", "y.png"])
    assert (args.url, args.model, args.raw, args.inputs) == (
        "http://other:9000",
        "served",
        True,
        ["x.png", "y.png"],
    )


def test_app_reads_the_config_and_flags_override_it(tmp_path):
    config = _config(tmp_path, model="outputs/sft", port=7000, backend="hf", dtype="float32")
    args, options = app.parse_args(["--config", config, "--port", "7001"])
    assert (args.model, args.port, options.backend, options.dtype) == ("outputs/sft", 7001, "hf", "float32")
    # The app's own defaults: one drawing at a time, room for Tree-CoT answers.
    assert (options.batch_size, options.max_new_tokens) == (1, 1024)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "m", "--sets", "s", "--backend", "tpu"], "--backend: invalid choice: 'tpu'"),
        (["--model", "m", "--sets", "s", "--batch-size", "0"], "must all be at least 1"),
        (["--model", "m", "--sets", "s", "--limit", "ten"], "--limit: invalid int value: 'ten'"),
        (["--sets", "s"], "required: --model"),
    ],
)
def test_a_bad_option_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_config_with_an_unknown_key_or_no_file_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--config", _config(tmp_path, model="m", sets="s", bach_size=4)])
    assert "unknown option(s) in the config: bach_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.parse_args(["--config", str(tmp_path / "missing.yaml"), "a.png"])
    assert "missing.yaml not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, reason",
    [("- model: m\n", "must be a YAML mapping of keys to values"), ("model: [m\n", "is not valid YAML")],
)
def test_evaluation_and_export_read_a_bad_config_file_alike(tmp_path, capsys, text, reason):
    """One reader of ``--config`` files (``data_prep.recipe_file``) behind evaluation and export."""
    from train.export import ExportError, parse_options

    path = tmp_path / "options.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--config", str(path)])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"config {path} {reason}" in line
    with pytest.raises(ExportError, match=f"config .* {reason}"):
        parse_options(["--config", str(path)])
