"""The web demo: the reading it shows (same contract as eval.serve.predict), and the app itself started
and asked over HTTP on 127.0.0.1, in-process and as `python -m eval.app` with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image, ImageDraw

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, prompt_for
from eval.serve.app import BlankImage, auxiliary_part, read_formula
from scripts.headless import HeadlessChromium, find_chromium
from tests.browser_support import free_port, require

REPO = Path(__file__).resolve().parents[2]


class EchoBackend:
    """Answers each task as the reference formats it, for the formula x ^ { 2 }; records its inputs."""

    name = "echo"
    answers = {
        TASK_MAIN: "x ^ { 2 }",
        TASK_TREE_COT: "x\n\t2 (sup)\nx ^ { 2 }",
        TASK_COUNTING: "x: 1, ^: 1, 2: 1\nx ^ { 2 }",
    }

    def __init__(self):
        self.calls = []

    def generate(self, images, prompts):
        self.calls.append((images, prompts))
        task = next(t for t, p in ((t, prompt_for(t)) for t in self.answers) if p == prompts[0])
        return [self.answers[task]]

    def close(self):
        pass


def _formula(ink=0, page=255, mode="L") -> Image.Image:
    image = Image.new(mode, (160, 60), page)
    ImageDraw.Draw(image).line([(20, 40), (60, 10), (100, 45)], fill=ink, width=4)
    return image


def test_reading_per_task_shows_the_auxiliary_answer_and_asks_the_contract_prompt():
    backend = EchoBackend()
    main = read_formula(backend, _formula(), TASK_MAIN)
    assert (main.latex, main.auxiliary, main.inverted) == ("x ^ { 2 }", "", False)
    tree = read_formula(backend, _formula(), TASK_TREE_COT)
    assert tree.latex == "x ^ { 2 }" and tree.auxiliary == "x\n\t2 (sup)"
    counts = read_formula(backend, _formula(), TASK_COUNTING)
    assert counts.auxiliary == "x: 1, ^: 1, 2: 1"
    assert [prompts for _, prompts in backend.calls] == [
        [prompt_for(t)] for t in (TASK_MAIN, TASK_TREE_COT, TASK_COUNTING)
    ]
    with pytest.raises(ValueError, match="task must be one of"):
        read_formula(backend, _formula(), "error_detection")


def test_reading_inverts_dark_pages_flattens_sketches_and_refuses_blank_images():
    backend = EchoBackend()
    assert read_formula(backend, _formula(ink=255, page=0), TASK_MAIN).inverted  # a CROHME bitmap
    sketch = _formula(ink=(0, 0, 0, 255), page=(0, 0, 0, 0), mode="RGBA")  # black strokes, transparent page
    reading = read_formula(backend, sketch, TASK_MAIN)
    seen = backend.calls[-1][0][0].convert("L")
    assert not reading.inverted and seen.getpixel((0, 0)) == 255  # on white, not inverted to black
    with pytest.raises(BlankImage, match="draw or upload"):
        read_formula(backend, Image.new("RGBA", (100, 40), (0, 0, 0, 0)), TASK_MAIN)
    assert auxiliary_part("only latex") == "" and auxiliary_part("a\nb\n\nc\n") == "a\nb"


def _app_python() -> Path:
    """The web demo's environment (``make install-app``: ``<venv>-app``, or ``HMER_APP_PYTHON``)."""
    return Path(os.environ.get("HMER_APP_PYTHON") or f"{sys.prefix}-app/bin/python")


@pytest.fixture(scope="module")
def app_python() -> Path:
    python = _app_python()
    has_gradio = (
        python.is_file()
        and subprocess.run(
            [python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('gradio') is None)"]
        ).returncode
        == 0
    )
    require(has_gradio, f"the web demo's environment {python} is missing (make install-app)")
    return python


def _serve(python: Path, args: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [str(python), *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _wait_for_server(f"http://127.0.0.1:{port}/", process)
    return process


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the app exited with status {process.returncode}: {process.stdout.read().decode()}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the app did not answer on {url} within {timeout} s")


def _stop(process: subprocess.Popen) -> str:
    process.terminate()
    return process.communicate(timeout=30)[0].decode(errors="replace")


#: gradio's own client, run in the app's environment: ask API_NAME with the JSON list of inputs,
#: where {"file": path} stands for an uploaded file.
ASK = """
import json, sys
from gradio_client import Client, handle_file
url, api, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def value(v):
    if isinstance(v, dict) and "file" in v:
        return handle_file(v["file"])
    if isinstance(v, dict):
        return {k: value(x) for k, x in v.items()}
    return v
print(json.dumps(Client(url, verbose=False).predict(*[value(v) for v in inputs], api_name=api)))
"""


def _ask(python: Path, port: int, api: str, inputs: list) -> list:
    done = subprocess.run(
        [str(python), "-c", ASK, f"http://127.0.0.1:{port}/", api, json.dumps(inputs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


#: The app with EchoBackend (this file's), served on the port given.
SERVE_ECHO = (
    "import sys; from eval.serve.app import build_app; from tests.eval.test_app import EchoBackend; "
    "build_app(EchoBackend(), 'outputs/sft-crohme').launch(server_name='127.0.0.1', "
    "server_port=int(sys.argv[1]), quiet=True)"
)


@pytest.mark.slow  # a gradio server in a subprocess
def test_app_answers_a_request_with_the_typeset_latex_and_the_counts(app_python, tmp_path):
    image, sketch = tmp_path / "formula.png", tmp_path / "sketch.png"
    _formula().save(image)
    # A drawing: black strokes on a transparent layer, as the sketchpad sends it.
    _formula(ink=(0, 0, 0, 255), page=(0, 0, 0, 0), mode="RGBA").save(sketch)
    port = free_port()
    process = _serve(app_python, ["-c", SERVE_ECHO, str(port)], port)
    try:
        read = _ask(app_python, port, "/read", [{"file": str(image)}, TASK_COUNTING])
        drawn = {"background": None, "layers": [], "composite": {"file": str(sketch)}}
        read_drawn = _ask(app_python, port, "/read_sketch", [drawn, TASK_TREE_COT])
    finally:
        _stop(process)
    assert read == ["$$\nx ^ { 2 }\n$$", "x ^ { 2 }", "x: 1, ^: 1, 2: 1"]
    assert read_drawn == ["$$\nx ^ { 2 }\n$$", "x ^ { 2 }", "x\n\t2 (sup)"]


@pytest.mark.slow
@pytest.mark.browser
def test_app_command_starts_with_the_tiny_model_and_answers(app_python, tiny_model_dir, tmp_path):
    image = tmp_path / "formula.png"
    _formula().save(image)
    port = free_port()
    command = [
        "-m",
        "eval.app",
        "--model",
        str(tiny_model_dir),
        "--port",
        str(port),
        "--max-new-tokens",
        "16",
    ]
    process = _serve(app_python, command, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        result = _ask(app_python, port, "/read", [{"file": str(image)}, TASK_MAIN])
        # The tiny model's weights are random: what it reads is noise, but it is an answer.
        assert len(result) == 3 and all(isinstance(part, str) for part in result)
        assert result[0].startswith("$$") or result[0] == "*(the model gave no LaTeX)*"
        if find_chromium() is not None:  # the page itself loads everything from the app
            with HeadlessChromium(width=1200, height=800) as browser:
                requests = browser.open(url, settle=1)
                assert browser.wait_for(
                    "[...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Read')"
                )
            assert {urlsplit(u).hostname for u in requests if u.startswith("http")} == {"127.0.0.1"}
            assert all(u.startswith(("http://127.0.0.1", "data:", "blob:")) for u in requests), requests
    finally:
        output = _stop(process)
    assert "serving" in output and f"http://127.0.0.1:{port}" in output


class SavingEchoBackend(EchoBackend):
    """EchoBackend that also saves the image it is asked about (to the path in HMER_TEST_SEEN)."""

    def generate(self, images, prompts):
        images[0].save(os.environ["HMER_TEST_SEEN"])
        return super().generate(images, prompts)


SERVE_SAVING_ECHO = SERVE_ECHO.replace("EchoBackend", "SavingEchoBackend")


@pytest.mark.slow
@pytest.mark.browser
def test_the_sketchpad_opens_with_a_thin_brush_that_draws(app_python, tmp_path, monkeypatch):
    """Drawing right after the page opens makes strokes (no click on *Brush* first), pen-thin."""
    require(find_chromium() is not None, "chromium is not installed (Debian: apt-get install -y chromium)")
    seen = tmp_path / "seen.png"
    monkeypatch.setenv("HMER_TEST_SEEN", str(seen))
    port = free_port()
    process = _serve(app_python, ["-c", SERVE_SAVING_ECHO, str(port)], port)
    try:
        with HeadlessChromium(width=1300, height=1000) as browser:
            browser.open(f"http://127.0.0.1:{port}/", settle=1)
            assert browser.wait_for(
                "[...document.querySelectorAll('#sketchpad button')]"
                ".some(b => b.title === 'Brush' && b.classList.contains('highlight'))"
            )
            box = browser.evaluate(
                "(() => { const r = document.querySelector('#sketchpad canvas').getBoundingClientRect();"
                " return [r.x, r.y, r.width, r.height]; })()"
            )
            x0, y = box[0] + box[2] * 0.25, box[1] + box[3] * 0.5
            x1 = box[0] + box[2] * 0.75

            def mouse(kind: str, x: float) -> None:
                pressed = 0 if kind == "mouseReleased" else 1
                browser.call(
                    "Input.dispatchMouseEvent",
                    type=kind,
                    x=x,
                    y=y,
                    button="left",
                    buttons=pressed,
                    clickCount=1,
                )

            mouse("mouseMoved", x0)
            mouse("mousePressed", x0)
            for step in range(1, 21):
                mouse("mouseMoved", x0 + (x1 - x0) * step / 20)
            mouse("mouseReleased", x1)
            browser.evaluate(
                "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Read').click()"
            )
            assert browser.wait_for("document.querySelector('#latex textarea').value === 'x ^ { 2 }'")
    finally:
        _stop(process)
    ink = np.asarray(Image.open(seen).convert("L")) < 128
    columns = ink.any(axis=0).nonzero()[0]
    assert columns.max() - columns.min() > ink.shape[1] / 3  # one long horizontal stroke
    thickness = ink[:, (columns.min() + columns.max()) // 2].sum()
    assert 2 <= thickness <= 10, thickness  # a pen, not gradio's default 50-pixel marker
