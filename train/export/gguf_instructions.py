"""``gguf``: llama.cpp's converter is not a Python package, so this format prints the commands that
make the GGUF pair (language model + ``mmproj`` vision projector) instead of writing files."""

from __future__ import annotations

from pathlib import Path

from data_prep.contract import MAIN_PROMPT
from train.modeling import ModelSource


def gguf_instructions(source_dir: str | Path | ModelSource, output_dir: str | Path) -> str:
    """How to make the GGUF pair (language model + ``mmproj`` vision projector) with llama.cpp."""
    if isinstance(source_dir, ModelSource):
        adapter = source_dir.adapter
        source = Path(adapter or source_dir.base)
    else:
        source = Path(source_dir)
        adapter = str(source) if (source / "adapter_config.json").is_file() else None
    out = Path(output_dir)
    merged = source
    lines = [
        "GGUF is not produced by this command: llama.cpp's converter (convert_hf_to_gguf.py, which "
        "writes Qwen2.5-VL's language model and its vision projector `mmproj` file) is not a Python "
        "package. Make it with llama.cpp:",
        "",
    ]
    step = 1
    if adapter:
        merged = out.parent / f"{out.name}-merged"
        lines += [
            f"  # {step}. merge the adapter (llama.cpp converts a plain model folder)",
            f"  python -m train.export --adapter {source} --format merged --output-dir {merged}",
            "",
        ]
        step += 1
    lines += [
        f"  # {step}. get llama.cpp and its converter's Python requirements",
        "  git clone https://github.com/ggml-org/llama.cpp && cd llama.cpp",
        "  pip install -r requirements/requirements-convert_hf_to_gguf.txt",
        "  cmake -B build && cmake --build build --config Release -j",
        "",
        f"  # {step + 1}. the language model (f16), then 4-bit K-quants",
        f"  mkdir -p {out}",
        f"  python convert_hf_to_gguf.py {merged} --outtype f16 --outfile {out}/model-f16.gguf",
        f"  ./build/bin/llama-quantize {out}/model-f16.gguf {out}/model-Q4_K_M.gguf Q4_K_M",
        "",
        f"  # {step + 2}. the vision tower + projector (keep it f16: it is small and quantising it hurts)",
        f"  python convert_hf_to_gguf.py {merged} --mmproj --outtype f16 --outfile {out}/mmproj-model-f16.gguf",
        "",
        f"  # {step + 3}. run it (the image must be prepared as in training: dark ink on white)",
        f"  ./build/bin/llama-mtmd-cli -m {out}/model-Q4_K_M.gguf --mmproj {out}/mmproj-model-f16.gguf \\",
        f"      --temp 0 --image formula.png -p '{MAIN_PROMPT}'",
        "",
        "See docs/export.md (GGUF) for the caveats: llama.cpp resizes images itself (not with the "
        "project's pixel bounds), so check its accuracy with eval.client against llama-server.",
    ]
    return "\n".join(lines)


def run(source: ModelSource, output_dir: Path, options) -> None:
    """The registry's entry point: prints the commands, writes nothing."""
    print(gguf_instructions(source, output_dir))
    return None
