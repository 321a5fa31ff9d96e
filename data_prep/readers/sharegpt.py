"""LLaMA-Factory ShareGPT data, as the Uni-MuMER reference distributes its training and test data.

Read, with option ``file`` (a file, a folder or a glob, relative to ``root`` unless absolute):

* a JSON list or JSON lines (``.json``/``.jsonl``) of ``{"images": [...], "messages": [...]}`` (or
  ``conversations``), turns as ``from``/``value`` (``human``/``gpt``) or ``role``/``content``
  (``user``/``assistant``), the human turn holding one ``<image>`` placeholder: the
  ``data/<DATASET>/prompts/*.json`` of the reference's ``data.zip``;
* parquet shards with the image embedded (``image``/``images`` column of ``{"bytes", "path"}``
  structs) and a ``conversations`` column: the Hub release ``phxember/Uni-MuMER-Data``, one folder
  per config (``<config>/*.parquet``).

Without ``file`` the reader looks for ``<split>.json``, ``<split>.jsonl``, ``<split>/`` (a folder of
shards or JSON files), ``prompts/<split>.json``, ``*/prompts/<split>.json`` and
``data/*/prompts/<split>.json`` under ``root``. Image paths are resolved inside
``root`` (``./data/CROHME/2014/images/x.jpg`` with ``root`` the folder holding ``data/``; when absent
there, with its leading folders dropped one at a time, so ``root`` may also be ``data/`` or
``data/CROHME``); a path leading out of ``root`` is refused (``path_escapes_root``).

The task comes from the prompt (:func:`recognise_task`, against the task table's prompts and
their variants, :mod:`data_prep.tasks.registry`): the main prompt and the second vanilla
prompt are ``main``, then Tree-CoT, counting, error detection and error correction (the prediction
their prompt carries goes into ``meta["prediction"]``). A prompt matching none is kept, verbatim,
as task ``other`` (counted per split in the report's rows by task). Prompts and answers are kept
verbatim; answers whose LaTeX line is malformed are rejected (``data_prep.answer_check``).
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.answer_check import length_problem
from data_prep.contract import IMAGE_TAG, TASK_MAIN, TASK_OTHER, Record, extract_latex
from data_prep.images import DatasetRoot, ImageError, decode_image
from data_prep.ink import dark_ink_on_light
from data_prep.readers.common import UTF8_BOM, ReadCursor, check_invert, checked_answer, start_reading
from data_prep.readers.sharegpt_files import find_files
from data_prep.rejects import Rejects
from data_prep.tasks.registry import TASKS, checked_tasks

logger = logging.getLogger(__name__)

SOURCE = "sharegpt"
USER_ROLES = ("human", "user")
ASSISTANT_ROLES = ("gpt", "assistant")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _template_pattern(template: str) -> re.Pattern[str]:
    """A template with ``{prediction}`` as a regex: any whitespace run matches any other."""
    head, placeholder, tail = template.partition("{prediction}")

    def words(part: str) -> str:
        return r"\s+".join(re.escape(w) for w in part.split())

    pattern = words(head) + (r"\s*(?P<prediction>.*?)\s*" + words(tail) if placeholder else "")
    return re.compile(pattern, re.DOTALL)


def _prompt_table() -> tuple[dict[str, tuple[str, str]], list[tuple[re.Pattern[str], str, str]]]:
    """Fixed prompts (squashed) -> (task, variant), and (pattern, task, variant) for templates,
    from the task table as it is now (:mod:`data_prep.tasks.registry`): each task's prompt (variant:
    the task's name, ``contract`` for a template) and its other wordings (e.g. ``vanilla``)."""
    wordings = []
    for task in TASKS.values():
        wordings.append((task.prompt, task.name, "contract" if "{prediction}" in task.prompt else task.name))
        wordings += [(prompt, task.name, variant) for variant, prompt in task.prompt_variants.items()]
    return _prompt_table_for(tuple(wordings))


@functools.lru_cache(maxsize=4)
def _prompt_table_for(
    wordings: tuple[tuple[str, str, str], ...],
) -> tuple[dict[str, tuple[str, str]], list[tuple[re.Pattern[str], str, str]]]:
    fixed: dict[str, tuple[str, str]] = {}
    templates = []
    for prompt, task, variant in wordings:
        if "{prediction}" in prompt:
            templates.append((_template_pattern(prompt), task, variant))
        else:
            fixed.setdefault(_squash(prompt), (task, variant))
    return fixed, templates


def recognise_task(prompt: str) -> tuple[str, str, str | None]:
    """``(task, variant, prediction)`` for a prompt (without its ``<image>``); unknown prompts give
    ``("other", "unknown", None)``. ``prediction`` is what an error-driven prompt carries."""
    fixed, templates = _prompt_table()
    squashed = _squash(prompt)
    if squashed in fixed:
        task, variant = fixed[squashed]
        return task, variant, None
    for pattern, task, variant in templates:
        match = pattern.fullmatch(prompt.strip())
        if match:
            return task, variant, match.group("prediction")
    return TASK_OTHER, "unknown", None


def _samples(path: Path, source: str, rejects: Rejects) -> Iterator[tuple[int, Any]]:
    """``(position, sample)``: the 1-based line (JSON lines), list index or parquet row."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        position = 0
        for batch in parquet.iter_batches(batch_size=64):
            for row in batch.to_pylist():
                position += 1
                yield position, row
        return
    data = path.read_bytes().removeprefix(UTF8_BOM)
    text_start = data.lstrip()[:1]
    if path.suffix == ".json" and text_start == b"[":
        try:
            items = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a valid JSON list: {err}") from None
        yield from enumerate(items, start=1)
        return
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            rejects.add(source, "bad_json", path, number, str(err))


# --------------------------------------------------------------------------- #
# Samples
# --------------------------------------------------------------------------- #


def _turn(turn: Any) -> tuple[str | None, Any]:
    if not isinstance(turn, dict):
        return None, None
    role = turn.get("from", turn.get("role"))
    content = turn.get("value", turn.get("content"))
    return (role if isinstance(role, str) else None), content


def _text_of(content: Any) -> tuple[str | None, int]:
    """``(text, image parts)`` of a turn's content: a string, or OpenAI-style parts."""
    if isinstance(content, str):
        return content, 0
    if isinstance(content, list):
        texts, images = [], 0
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") in ("image", "image_url"):
                images += 1
            else:
                return None, 0
        return "".join(texts), images
    return None, 0


def _images(sample: dict) -> list[Any] | None:
    value = sample.get("images", sample.get("image"))
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _image_name(image: Any, fallback: str) -> str:
    path = image.get("path") if isinstance(image, dict) else image
    if isinstance(path, str) and path.strip():
        return Path(path.replace("\\", "/")).name
    return fallback


class _ImageOpener:
    """Opens a sample's image: embedded bytes, or a path inside ``root`` (see the module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = DatasetRoot(root)

    def open(self, image: Any):
        if isinstance(image, dict):
            if image.get("bytes"):
                return decode_image(bytes(image["bytes"]), image.get("path") or "<embedded>")
            image = image.get("path")
        if isinstance(image, (bytes, bytearray)):
            return decode_image(bytes(image))
        if not isinstance(image, str) or not image.strip():
            raise ImageError("missing_image", "<none>", "the sample names no image")
        return self.root.load_image(self.resolve(image))

    def resolve(self, name: str) -> str:
        """``name`` relative to the root, or with leading folders dropped until it exists."""
        parts = [p for p in Path(name.replace("\\", "/")).parts if p not in (".", "")]
        if Path(name).is_absolute():
            return name
        for start in range(len(parts)):
            candidate = Path(*parts[start:])
            if (self.root.path / candidate).exists():
                return str(candidate)
        return str(Path(*parts)) if parts else name


def read(
    root: Path,
    split: str,
    rejects: Rejects,
    *,
    file: str | None = None,
    invert: str | bool = "auto",
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Records (any task) of ShareGPT data; see the module doc.

    Options:
        file: a data file, a folder of them or a glob (relative to ``root`` unless absolute).
        invert: ink polarity, ``"auto"`` (default, per image) or forced ``true``/``false``.
        cursor: a :class:`~data_prep.readers.common.ReadCursor`: the build's resume position
            (its first ``skip`` samples are passed over without opening their images).

    Rejects: ``bad_json``, ``bad_sample`` (no turns, or not one user turn then one assistant turn),
    ``image_count`` (not exactly one image, or ``<image>`` tags that do not match it),
    ``empty_label``, ``answer_too_long``, ``unbalanced_braces``, ``dangling_script`` (unless the
    build keeps published answers: ``Rejects.keep_answers``) and the image reasons. A file pattern
    or folder holding two editions of one set (``x.json`` and ``x_normalized.json``) is refused.
    ``meta`` holds ``label_file`` (the data file, relative to ``root``), ``line`` (its line, list
    index or parquet row), ``image_file``,
    ``prompt_variant``, ``prediction`` (error-driven prompts) and ``inverted``.
    """
    root = Path(root).absolute()
    cursor, rejects = start_reading(cursor, rejects)
    invert = check_invert(invert, SOURCE)
    files = find_files(root, split, file)
    opener = _ImageOpener(root)
    seen: collections.Counter[str] = collections.Counter()
    unknown_logged = False
    for path in files:
        label = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        for position, sample in _samples(path, SOURCE, rejects):
            skipped = cursor.skipping
            try:
                record = _record(sample, path, label, position, split, rejects, opener, invert, seen, skipped)
            finally:
                cursor.passed += 1
            if record is None:
                continue
            if record.task == TASK_OTHER and not unknown_logged:
                unknown_logged = True
                logger.warning(
                    "%s: a prompt matching no known task is kept as task 'other': %r",
                    path,
                    record.prompt[:160],
                )
            yield record


def _record(
    sample: Any,
    path: Path,
    label: str,
    position: int,
    split: str,
    rejects: Rejects,
    opener: _ImageOpener,
    invert: str | bool,
    seen: collections.Counter,
    skipped: bool,
) -> Record | None:
    def reject(reason: str, detail: str) -> None:
        rejects.add(SOURCE, reason, path, position, detail)

    if not isinstance(sample, dict):
        reject("bad_sample", f"expected an object, got {type(sample).__name__}")
        return None
    turns = sample.get("messages", sample.get("conversations"))
    if not isinstance(turns, list) or not turns:
        reject("bad_sample", "no 'messages' or 'conversations' list")
        return None
    parsed = [_turn(t) for t in turns]
    if len(parsed) != 2 or parsed[0][0] not in USER_ROLES or parsed[1][0] not in ASSISTANT_ROLES:
        roles = [role for role, _ in parsed]
        reject("bad_sample", f"expected one user turn then one assistant turn, got roles {roles}")
        return None
    user_text, image_parts = _text_of(parsed[0][1])
    answer, _ = _text_of(parsed[1][1])
    if user_text is None or answer is None:
        reject("bad_sample", "a turn's content is neither text nor text/image parts")
        return None
    images = _images(sample)
    tags = user_text.count(IMAGE_TAG) + image_parts
    if not images or len(images) != 1 or tags != 1:
        count = len(images) if images else 0
        reject(
            "image_count", f"expected one image and one {IMAGE_TAG}, got {count} image(s) and {tags} tag(s)"
        )
        return None
    prompt = user_text.replace(IMAGE_TAG, "").strip()
    task, variant, prediction = recognise_task(prompt)
    name = _image_name(images[0], f"{path.stem}-{position}")
    stem = Path(name).stem
    key = f"{stem}#{task}"
    seen[key] += 1
    record_id = stem if task == TASK_MAIN and seen[key] == 1 else f"{key}-{seen[key]}"
    what = f"{record_id}"
    if not answer.strip():
        reject("empty_label", f"{what}: empty answer")
        return None
    too_long = length_problem(answer)
    if too_long is not None:
        reject(too_long[0], f"{what}: {too_long[1]}")
        return None
    if (
        task in checked_tasks()
        and checked_answer(extract_latex(answer), SOURCE, rejects, path, position, what) is None
    ):
        return None
    if skipped:
        return None
    try:
        image = opener.open(images[0])
    except ImageError as err:
        reject(err.reason, f"{what}: {err.path}" + (f" ({err.detail})" if err.detail else ""))
        return None
    image, inverted = dark_ink_on_light(image, invert)
    meta: dict[str, Any] = {
        "label_file": label,
        "line": position,
        "image_file": name,
        "prompt_variant": variant,
        "inverted": inverted,
    }
    if prediction is not None:
        meta["prediction"] = prediction
    return Record(
        id=record_id,
        source=SOURCE,
        split=split,
        task=task,
        image=image,
        prompt=prompt,
        answer=answer,
        meta=meta,
    )
