"""A small client for a model served behind an OpenAI-compatible chat API (``vllm serve``).

    python -m eval.client --url http://localhost:8000 --model hmer formula.png
    python -m eval.client --model-dir exports/merged formula.png   # the bounds that model was trained with

The request carries exactly what training used: the image prepared by ``contract.prepare_image``
(sent as a base64 PNG data URL, so the server's resize sees the same pixels) and the task's prompt
from the contract, image first, no system turn. The image is sized within the served model's pixel
bounds: ``--model-dir`` reads them from the model folder (as the backends do), or ``--min-pixels`` /
``--max-pixels`` give them; the contract's defaults otherwise. With other bounds than the server's
``--mm-processor-kwargs`` the server resizes again and answers can differ. Served with the chat
template the model was trained with, the server renders the same text as ``train.inputs.prompt_text``.

    from eval.serve.client import build_request, send
    latex = send("http://localhost:8000", build_request(image, task="main", model="hmer"))
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
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
from eval.serve.predict import INVERT_MODES, PREDICT_TASKS

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


@dataclasses.dataclass
class ClientArgs:
    """Where to send the images and what to ask."""

    #: Image files and folders of images (also the command's positional arguments).
    inputs: list[str] = dataclasses.field(
        default_factory=list, metadata={"help": "image files and/or folders"}
    )
    url: str = "http://localhost:8000"
    model: str = dataclasses.field(
        default="hmer", metadata={"help": "the served model name (vllm serve --served-model-name)"}
    )
    task: str = dataclasses.field(default=TASK_MAIN, metadata={"choices": PREDICT_TASKS})
    invert: str = dataclasses.field(default="auto", metadata={"choices": INVERT_MODES})
    max_tokens: int = 1024
    api_key: str | None = None
    raw: bool = dataclasses.field(
        default=False, metadata={"help": "print the whole answer, not only its LaTeX line"}
    )
    #: The image bounds the served model expects: explicit values win over the folder's, which win
    #: over the contract's defaults (:meth:`bounds`).
    model_dir: str | None = dataclasses.field(
        default=None, metadata={"help": "the served model's folder: use the pixel bounds it was trained with"}
    )
    min_pixels: int | None = dataclasses.field(
        default=None, metadata={"help": "image pixel bounds (override --model-dir's)"}
    )
    max_pixels: int | None = dataclasses.field(default=None, metadata={"help": "see --min-pixels"})

    def __post_init__(self) -> None:
        if self.model_dir or self.min_pixels is not None or self.max_pixels is not None:
            self.bounds()  # validates them: a one-line ValueError (the parser prints it)

    def bounds(self) -> ImageBounds:
        """The pixel bounds to prepare images with (reads ``model_dir``'s recorded bounds)."""
        base = DEFAULT_BOUNDS
        if self.model_dir:
            from train.modeling import ModelLoadError, saved_bounds

            try:
                base = saved_bounds(self.model_dir) or DEFAULT_BOUNDS
            except ModelLoadError as err:
                raise ValueError(f"--model-dir: {err}") from None
        return ImageBounds(
            min_pixels=base.min_pixels if self.min_pixels is None else self.min_pixels,
            max_pixels=base.max_pixels if self.max_pixels is None else self.max_pixels,
        )


def parse_args(argv: Sequence[str] | None = None) -> ClientArgs:
    from eval.cli import parse_command_line

    def images(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "images", nargs="*", metavar="IMAGE|DIR", help="image files and/or folders of images"
        )

    args, extra = parse_command_line(
        (ClientArgs,), argv, prog="python -m eval.client", description=__doc__, extend=images
    )
    return dataclasses.replace(args, inputs=[*args.inputs, *extra.images])


def main(argv: Sequence[str] | None = None) -> int:
    from data_prep.images import ImageError, read_image
    from eval.serve.predict import list_images, prepare_for_model

    args = parse_args(argv)
    if not args.inputs:
        print("error: no images to send", file=sys.stderr)
        return 2
    bounds = args.bounds()
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
