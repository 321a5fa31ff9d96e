"""Screenshots for docs/: an evaluation's report.html and the web demo reading an image.

    python -m scripts.screenshots --report outputs/demo-eval/report.html \\
        --model outputs/tiny-demo --image samples/crohme2014_test/off_image_test/18_em_0.bmp

(``make demo`` writes that report and model.) Both pages are opened in headless Chromium
(:mod:`scripts.headless`); the demo is started on 127.0.0.1, the image uploaded, *Read* pressed,
and the page captured once the LaTeX is there. It prints every URL either page requested.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from scripts.headless import HeadlessChromium

REPO = Path(__file__).resolve().parent.parent


def report_screenshot(report: Path, out: Path) -> list[str]:
    with HeadlessChromium(width=1400, height=2000) as browser:
        requests = browser.open(report.resolve().as_uri())
        browser.wait_for("document.body.dataset.typeset")
        browser.screenshot(out, full_page=False)
    return requests


def app_screenshot(model: str, image: Path, out: Path, port: int = 7899) -> list[str]:
    png = Path(tempfile.mkdtemp()) / f"{image.stem}.png"
    with Image.open(image) as img:
        img.convert("L").save(png)  # the upload widget takes PNG; the app inverts it as predict would
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "eval.app", "--model", model, "--port", str(port), "--max-new-tokens", "64"],
        cwd=REPO,
        env=env,
    )
    try:
        with HeadlessChromium(width=1300, height=820, timeout=120) as browser:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(240):
                try:
                    requests = browser.open(url, settle=1)
                    if browser.evaluate("!!document.querySelector('gradio-app button[role=tab]')"):
                        break
                except Exception:
                    pass
            upload_tab = "[...document.querySelectorAll('button[role=tab]')].find(b => b.textContent.trim() === 'Upload')"
            browser.wait_for(f"!!{upload_tab}")
            browser.evaluate(f"{upload_tab}.click()")
            browser.wait_for("!!document.querySelector('#upload input[type=file]')")
            root = browser.call("DOM.getDocument", depth=-1, pierce=True)["root"]["nodeId"]
            node = browser.call("DOM.querySelector", nodeId=root, selector="#upload input[type=file]")[
                "nodeId"
            ]
            browser.call("DOM.setFileInputFiles", nodeId=node, files=[str(png)])
            browser.wait_for("!!document.querySelector('#upload img')", timeout=60)
            browser.evaluate(
                "[...document.querySelectorAll('button')].filter(b => b.textContent.trim() === 'Read')"
                ".find(b => b.offsetParent !== null).click()"
            )
            try:
                browser.wait_for("document.querySelector('#latex textarea').value", timeout=120)
            except Exception:
                browser.screenshot(out.with_name("app-failed.png"), full_page=False)
                raise
            browser.wait_for("!!document.querySelector('#typeset .katex')", timeout=10)
            browser.screenshot(out, full_page=False)
            return requests
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    print(
        "report requested:", report_screenshot(args.report, args.out_dir / "report.png")[:1], "+ data: URIs"
    )
    requests = app_screenshot(args.model, args.image, args.out_dir / "app.png")
    print("app requested hosts:", sorted({u.split("/")[2] for u in requests if u.startswith("http")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
