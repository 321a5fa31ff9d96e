"""The OpenAI-compatible client: its request matches the shared prompt contract, and the chat
template a server applies to it renders the very text the model was trained on."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from data_prep.contract import MAIN_PROMPT, TREE_COT_PROMPT, prepare_image
from data_prep.images import invert
from eval.serve import client
from train.inputs import prompt_text
from train.modeling import load_processor

SAMPLE = sorted(
    (Path(__file__).resolve().parents[2] / "samples" / "crohme2014_test" / "off_image_test").glob("*.bmp")
)[0]


def _decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))
    assert image.format == "PNG"
    return image


def test_request_follows_the_prompt_contract():
    image = invert(Image.open(SAMPLE))
    # A very long, thin formula: prepare_image pads and rescales it, the client must send that.
    thin = Image.new("L", (2000, 10), 255)
    for source in (image, thin):
        request = client.build_request(source, "main", model="hmer")
        assert request["model"] == "hmer" and request["temperature"] == 0.0
        (message,) = request["messages"]
        assert message["role"] == "user"
        kinds = [part["type"] for part in message["content"]]
        assert kinds == ["image_url", "text"]  # one image, before the prompt, as in training
        assert message["content"][1]["text"] == MAIN_PROMPT
        sent = _decode_data_url(message["content"][0]["image_url"]["url"])
        expected = prepare_image(source)
        assert sent.size == expected.size
        assert ImageChops.difference(sent.convert("RGB"), expected).getbbox() is None  # same pixels
    tree = client.build_request(image, "tree_cot")
    assert tree["messages"][0]["content"][1]["text"] == TREE_COT_PROMPT
    with pytest.raises(ValueError, match="unknown task"):
        client.build_request(image, "caption")


def test_served_chat_template_renders_the_training_text(tiny_model_dir):
    processor = load_processor(str(tiny_model_dir))
    request = client.build_request(invert(Image.open(SAMPLE)), "main")
    # What an OpenAI-compatible server does: each image_url part becomes an image placeholder in
    # the messages handed to the model's chat template.
    as_placeholders = [
        {
            "role": m["role"],
            "content": [{"type": "image"} if p["type"] == "image_url" else p for p in m["content"]],
        }
        for m in request["messages"]
    ]
    rendered = processor.apply_chat_template(as_placeholders, tokenize=False, add_generation_prompt=True)
    assert rendered == prompt_text(processor, MAIN_PROMPT)
    assert rendered.count("<|image_pad|>") == 1 and "You are a helpful assistant." in rendered
    # Qwen's template also accepts the image_url parts as they are.
    direct = processor.apply_chat_template(request["messages"], tokenize=False, add_generation_prompt=True)
    assert direct == rendered


class _Handler(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.received.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if body.get("model") != "hmer":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')
            return
        answer = {"choices": [{"message": {"role": "assistant", "content": "x ^ { 2 }"}}]}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.received = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_send_posts_the_request_and_returns_the_answer(server):
    request = client.build_request(Image.new("L", (80, 40), 255), "main", model="hmer")
    assert client.send(server, request, api_key="secret") == "x ^ { 2 }"
    (got,) = _Handler.received
    assert got["path"] == "/v1/chat/completions" and got["body"] == request
    assert got["auth"] == "Bearer secret"
    with pytest.raises(RuntimeError, match="HTTP 404.*model not found"):
        client.send(server + "/v1", {**request, "model": "other"})


def test_send_reports_an_unreachable_server():
    with pytest.raises(RuntimeError, match="cannot reach"):
        client.send("http://127.0.0.1:9", {"model": "hmer", "messages": []}, timeout=2)


def test_endpoint_forms():
    assert client.endpoint("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert client.endpoint("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert client.endpoint("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_cli_prints_latex_per_image(server, tmp_path, capsys):
    image = tmp_path / "f.png"
    Image.new("L", (80, 40), 0).save(image)
    rc = client.main(["--url", server, str(image), str(tmp_path / "missing.png")])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "f\tx ^ { 2 }\n" and "missing_image" in err
    sent = _decode_data_url(_Handler.received[0]["body"]["messages"][0]["content"][0]["image_url"]["url"])
    assert sent.convert("L").getextrema() == (255, 255)  # the black image was inverted to white


def test_cli_sizes_images_within_the_served_models_bounds(server, tmp_path, capsys):
    """--model-dir reads the bounds the model folder records; --min/--max-pixels override them."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "preprocessor_config.json").write_text(
        json.dumps({"hmer_image_bounds": {"min_pixels": 3136, "max_pixels": 12544}})
    )
    image = tmp_path / "f.png"
    Image.new("L", (800, 400), 255).save(image)

    def sent_size(*flags: str) -> tuple[int, int]:
        _Handler.received = []
        assert client.main(["--url", server, str(image), *flags]) == 0
        url = _Handler.received[0]["body"]["messages"][0]["content"][0]["image_url"]["url"]
        return _decode_data_url(url).size

    width, height = sent_size("--model-dir", str(model))
    assert width * height <= 12544 and width > height  # the folder's cap, not the contract's default
    assert sent_size() == prepare_image(Image.new("L", (800, 400), 255)).size
    width, height = sent_size("--model-dir", str(model), "--max-pixels", "50176")
    assert 12544 < width * height <= 50176
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        client.main(["--url", server, str(image), "--min-pixels", "100", "--max-pixels", "50"])
    assert exit_info.value.code == 2 and "pixels" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        client.main(["--url", server, str(image), "--model-dir", str(tmp_path / "absent")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "--model-dir" in err and len(err.strip().splitlines()) == 1
