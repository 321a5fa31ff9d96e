"""Encode rows exactly as LLaMA-Factory's supervised pipeline does (run in LLaMA-Factory's own venv).

    /work/venvs/llamafactory/bin/python tests/llamafactory_rows.py JOB.json OUT.json

JOB: ``{"model": DIR, "image_max_pixels": N, "image_min_pixels": N, "rows": [{"image": PNG,
"prompt": STR, "answer": STR}]}``. OUT: one ``{"input_ids", "labels", "image_grid_thw"}`` per row,
made by ``SupervisedDatasetProcessor._encode_data_example`` with the ``qwen2_vl`` template, as
LLaMA-Factory trains a ShareGPT row ``<image>PROMPT`` -> ``ANSWER``. Imports nothing of this project
(its environment has a different transformers).
"""

import json
import sys


def main(job_path: str, out_path: str) -> None:
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    from llamafactory.model import load_tokenizer

    job = json.loads(open(job_path).read())
    model_args = ModelArguments(
        model_name_or_path=job["model"],
        image_max_pixels=job["image_max_pixels"],
        image_min_pixels=job["image_min_pixels"],
    )
    data_args = DataArguments(template="qwen2_vl", cutoff_len=100_000)
    modules = load_tokenizer(model_args)
    tokenizer, processor = modules["tokenizer"], modules["processor"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    encoder = SupervisedDatasetProcessor(
        template=template, tokenizer=tokenizer, processor=processor, data_args=data_args
    )
    out = []
    for row in job["rows"]:
        input_ids, labels = encoder._encode_data_example(
            prompt=[{"role": "user", "content": "<image>" + row["prompt"]}],
            response=[{"role": "assistant", "content": row["answer"]}],
            system=None,
            tools=None,
            images=[row["image"]],
            videos=[],
            audios=[],
        )
        mm = template.mm_plugin._get_mm_inputs([row["image"]], [], [], processor)
        out.append(
            {"input_ids": input_ids, "labels": labels, "image_grid_thw": mm["image_grid_thw"].tolist()}
        )
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
