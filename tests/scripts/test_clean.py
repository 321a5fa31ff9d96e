"""`make clean` removes rebuildable outputs and keeps trained models; `make clean-models` removes them."""

from __future__ import annotations

from scripts.clean import main


def test_clean_keeps_models_and_clean_models_removes_them(tmp_path):
    out = tmp_path / "outputs"
    (out / "data" / "crohme").mkdir(parents=True)
    (out / "data" / "crohme" / "train-00000.parquet").write_bytes(b"x")
    (out / "eval" / "run").mkdir(parents=True)
    (out / "eval" / "run" / "summary.json").write_text("{}")
    (out / "qlora" / "checkpoint-5").mkdir(parents=True)
    (out / "qlora" / "checkpoint-5" / "adapter_model.safetensors").write_bytes(b"w")
    (out / "exports" / "merged").mkdir(parents=True)
    (out / "exports" / "merged" / "model.safetensors").write_bytes(b"w")
    (out / "confusions.json").write_text("{}")

    assert main([str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["exports", "qlora"]
    assert main(["--models", "--dry-run", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["exports", "qlora"]
    assert main(["--models", str(out)]) == 0
    assert list(out.iterdir()) == []
