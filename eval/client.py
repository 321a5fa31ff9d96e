"""A small client for a model served behind an OpenAI-compatible chat API (``vllm serve``).

    python -m eval.client --url http://localhost:8000 --model hmer formula.png
    python -m eval.client --model-dir exports/merged formula.png   # the bounds that model was trained with

The request carries exactly what training used: the image prepared by ``contract.prepare_image``
(sent as a base64 PNG data URL, so the server's resize sees the same pixels) and the task's prompt
from the contract, image first, no system turn. The image is sized within the served model's pixel
bounds: ``--model-dir`` reads them from the model folder (as the backends do), or ``--min-pixels`` /
``--max-pixels`` give them; the contract's defaults otherwise. With other bounds than the server's
``--mm-processor-kwargs`` the server resizes again and answers can differ. Served with the chat template the model was
trained with, the server renders the same text as ``train.inputs.prompt_text``.

    from eval.client import build_request, send
    latex = send("http://localhost:8000", build_request(image, task="main", model="hmer"))
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import (
    DEFAULT_BOUNDS,
    TASK_MAIN,
    ImageBounds,
    build_messages,
    extract_latex,
    prepare_image,
    prompt_for,
)

CHAT_COMPLETIONS = "/v1/chat/completions"


def png_data_url(image: Image.Image) -> str:
    """``data:image/png;base64,...`` of ``image`` (PNG: lossless, so the server sees these pixels)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(image: Image.Image, prompt: str) -> list[dict[str, Any]]:
    """The contract's messages with the image placeholder replaced by an ``image_url`` part."""
    messages = copy.deepcopy(build_messages(prompt))
    for message in messages:
        message["content"] = [
            {"type": "image_url", "image_url": {"url": png_data_url(image)}}
            if part.get("type") == "image"
            else part
            for part in message["content"]
        ]
    return messages


def build_request(
    image: Image.Image,
    task: str = TASK_MAIN,
    *,
    model: str = "hmer",
    bounds: ImageBounds = DEFAULT_BOUNDS,
    max_tokens: int = 1024,
    temperature: float = 0.0,
    prediction: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a chat-completions request for one image (greedy by default)."""
    prepared = prepare_image(image, bounds)
    return {
        "model": model,
        "messages": chat_messages(prepared, prompt_for(task, prediction)),
        "max_tokens": max_tokens,
        "temperature": temperature,
    }


def endpoint(url: str) -> str:
    """Accept ``http://host:port``, ``.../v1`` or the full chat-completions URL."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + CHAT_COMPLETIONS


def send(url: str, request: dict[str, Any], *, timeout: float = 120.0, api_key: str | None = None) -> str:
    """POST ``request`` and return the answer text; a clear error for HTTP and connection failures."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(endpoint(url), data=json.dumps(request).encode("utf-8"), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:500]
        raise RuntimeError(f"{endpoint(url)} answered HTTP {err.code}: {detail}") from None
    except urllib.error.URLError as err:
        raise RuntimeError(f"cannot reach {endpoint(url)}: {err.reason}") from None
    try:
        return body["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise RuntimeError(f"unexpected answer from {endpoint(url)}: {json.dumps(body)[:500]}") from None


def bounds_from_options(
    model_dir: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None
) -> ImageBounds:
    """The pixel bounds to prepare images with: explicit values win over the model folder's, which win
    over the contract's defaults."""
    base = DEFAULT_BOUNDS
    if model_dir:
        from train.modeling import saved_bounds

        base = saved_bounds(model_dir) or DEFAULT_BOUNDS
    return ImageBounds(
        min_pixels=base.min_pixels if min_pixels is None else min_pixels,
        max_pixels=base.max_pixels if max_pixels is None else max_pixels,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from data_prep.images import ImageError, read_image
    from eval.predict import INVERT_MODES, PREDICT_TASKS, list_images, prepare_for_model

    parser = argparse.ArgumentParser(
        prog="python -m eval.client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|DIR")
    parser.add_argument("--url", default="http://localhost:8000")
    parser.add_argument(
        "--model", default="hmer", help="the served model name (vllm serve --served-model-name)"
    )
    parser.add_argument("--task", default=TASK_MAIN, choices=PREDICT_TASKS)
    parser.add_argument("--invert", default="auto", choices=INVERT_MODES)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--raw", action="store_true", help="print the whole answer, not only its LaTeX line")
    parser.add_argument(
        "--model-dir",
        default=None,
        help="the served model's folder: use the pixel bounds it was trained with",
    )
    parser.add_argument("--min-pixels", type=int, default=None, help="pixel bounds (override --model-dir's)")
    parser.add_argument("--max-pixels", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        bounds = bounds_from_options(args.model_dir, args.min_pixels, args.max_pixels)
    except ValueError as err:
        parser.error(str(err))
    failed = 0
    for path in list_images(args.inputs):
        try:
            image, _ = prepare_for_model(read_image(path), args.invert)
            answer = send(
                args.url,
                build_request(image, args.task, model=args.model, bounds=bounds, max_tokens=args.max_tokens),
                api_key=args.api_key,
            )
        except (ImageError, RuntimeError) as err:
            print(f"error: {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path.stem}\t{answer if args.raw else extract_latex(answer)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
