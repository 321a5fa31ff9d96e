"""Run in the vLLM environment by tests/eval/test_vllm_engine.py: several vLLM backends in one process
(one Python + vLLM import for all of them), greedy answers written as JSON.

    python -m tests.eval.vllm_engine_support JOBS.json OUT.json

``JOBS.json``: ``{"images": [paths], "max_new_tokens": N, "jobs": {name: {"model": M, "dp": 1}}}``;
``OUT.json``: ``{name: {"texts": [...], "start_s": engine start seconds, "seconds": generation}}``.
Images are read and prepared as ``eval.predict`` does (``prepare_for_model``).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path


def read_images(paths: list[str]):
    from data_prep.images import read_image
    from eval.serve.predict import prepare_for_model

    return [prepare_for_model(read_image(Path(p)), "auto")[0] for p in paths]


def main(argv: list[str]) -> int:
    from data_prep.contract import MAIN_PROMPT
    from data_prep.io_utils import write_text_atomic
    from eval.backends import get_backend

    spec = json.loads(Path(argv[0]).read_text())
    images = read_images(spec["images"])
    out = {}
    for name, job in spec["jobs"].items():
        started = time.perf_counter()
        backend = get_backend(
            "vllm", job["model"], max_new_tokens=spec["max_new_tokens"], dp=job.get("dp", 1), dtype="float32"
        )
        try:
            start_s = time.perf_counter() - started
            started = time.perf_counter()
            texts = backend.generate(images, [MAIN_PROMPT] * len(images))
            out[name] = {"texts": texts, "start_s": start_s, "seconds": time.perf_counter() - started}
        finally:
            backend.close()
            del backend
            gc.collect()
        print(f"{name}: engine start {start_s:.0f} s, {len(images)} images", file=sys.stderr, flush=True)
    write_text_atomic(Path(argv[1]), json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
