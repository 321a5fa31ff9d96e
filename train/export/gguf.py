"""GGUF export through llama.cpp's own converter (``convert_hf_to_gguf.py`` + ``gguf-py``).

    python -m train.export.gguf fetch                      # once: the sdist into .cache/llama.cpp/
    python -m train.export.gguf convert MERGED_MODEL OUT_DIR [--outtype f16|q8_0|Q4_K_M ...]
    make export FORMAT=gguf ADAPTER=exports/merged         # the same, via train.export

The converter is not a package, but the ``llama-cpp-python`` sdist on PyPI carries it, its
``conversion/`` package and ``gguf-py`` (``fetch`` runs ``pip download --no-binary :all:`` for the
pinned version and unpacks only those). The output is the pair llama.cpp needs:
``model-<TYPE>.gguf`` (language model) and ``mmproj-model-f16.gguf`` (vision tower + merger; keep
it f16). Both carry the image bounds the model was fine-tuned with (``hmer.image.min_pixels`` /
``hmer.image.max_pixels``) so a caller can pre-size images the project's way.

Two things the converter does not know, handled here at run time without editing its files:

* the BPE pre-tokenizer fingerprint: llama.cpp names pre-tokenizers by the hash of a test string's
  tokens, and a tokenizer it has never seen (the tiny test model's own BPE) raises. We name it from
  ``tokenizer.json`` itself: a plain ``ByteLevel`` pre-tokenizer with its regex is GPT-2's
  (``gpt-2``); Qwen2's ``Split`` regex + ``ByteLevel`` is ``qwen2``. Known hashes are untouched.
* a vision tower shallower than 3 blocks: the converter's tensor-name map covers block ids
  ``< depth``, and the merger's ``visual.merger.mlp.{0,2}`` are looked up as block ids, so
  ``mlp.2`` is "unmappable" at depth 2. The name map is widened to 3 ids; the written block count
  stays the model's.

Also, ``Qwen2VLModel.set_vocab`` imports ``sentencepiece`` before noticing there is no
``tokenizer.model``; without sentencepiece installed we go straight to the BPE vocabulary, which is
what the converter itself falls back to for Qwen2.5-VL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: Where ``fetch`` unpacks the converter (HMER_LLAMA_CPP_DIR overrides).
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "llama.cpp"
#: What the converter writes itself; the k-quants need ``llama-quantize`` (a llama.cpp build).
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
QUANTIZE_TYPES = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q4_0")
#: GGUF keys with the project's image bounds (uint32), in both files.
MIN_PIXELS_KEY, MAX_PIXELS_KEY = "hmer.image.min_pixels", "hmer.image.max_pixels"
_KEEP = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")


class GGUFError(ValueError):
    """A GGUF export that cannot go ahead (one line for the user)."""


def converter_dir(cache: str | Path | None = None) -> Path:
    base = Path(cache or os.environ.get("HMER_LLAMA_CPP_DIR") or DEFAULT_CACHE)
    return base / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"


def download_sdist(directory: str | Path) -> Path:
    """The pinned llama-cpp-python sdist from PyPI (``pip download``) into ``directory``; its path."""
    spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-binary",
        ":all:",
        "--no-deps",
        spec,
        "-d",
        str(directory),
    ]
    subprocess.run(command, check=True)
    sdists = list(Path(directory).glob("llama_cpp_python-*.tar.gz"))
    if len(sdists) != 1:
        raise GGUFError(f"pip download left {len(sdists)} sdists in {directory}")
    return sdists[0]


def extract_vendor(sdist: Path, staging: Path, keep: tuple[str, ...] | None = _KEEP) -> Path:
    """Unpack the sdist's ``vendor/llama.cpp/`` into ``staging`` (only the paths starting with
    ``keep``; None: all of llama.cpp's sources, for a build)."""
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist) as archive:
        members = []
        for member in archive.getmembers():
            if not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix) :]
            if rel and (keep is None or rel.startswith(keep)) and (member.isfile() or member.isdir()):
                member.name = rel
                members.append(member)
        archive.extractall(staging, members=members, filter="data")
    if not (staging / "convert_hf_to_gguf.py").is_file():
        raise GGUFError(f"the sdist {sdist.name} has no vendor/llama.cpp/convert_hf_to_gguf.py")
    return staging


def fetch(cache: str | Path | None = None) -> Path:
    """Download the pinned sdist from PyPI (pip) and unpack the converter into the cache, atomically."""
    target = converter_dir(cache)
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staging = extract_vendor(download_sdist(tmp), Path(tmp) / "staging")
        os.replace(staging, target)
    return target


def pre_tokenizer_name(model_dir: str | Path) -> str | None:
    """llama.cpp's name for the model's BPE pre-tokenizer, read from ``tokenizer.json``."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return None
    pre = json.loads(path.read_text()).get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    kinds = [s.get("type") for s in steps]
    if kinds == ["Split", "ByteLevel"] and "\\p{N}" in json.dumps(steps[0].get("pattern", {})):
        return "qwen2"
    return None


def quantize_binary() -> str | None:
    """``llama-quantize`` from LLAMA_QUANTIZE or PATH (a llama.cpp build), or None."""
    return os.environ.get("LLAMA_QUANTIZE") or shutil.which("llama-quantize")


def read_bounds(model_dir: str | Path) -> tuple[int, int]:
    """The model's saved image bounds (its preprocessor config), else the project's defaults."""
    from data_prep.contract import DEFAULT_BOUNDS

    config = Path(model_dir) / "preprocessor_config.json"
    data = json.loads(config.read_text()) if config.is_file() else {}
    saved = data.get("hmer_image_bounds") or {}
    return (
        int(saved.get("min_pixels", DEFAULT_BOUNDS.min_pixels)),
        int(saved.get("max_pixels", DEFAULT_BOUNDS.max_pixels)),
    )


def _run_converter(llama_dir: str, argv: list[str]) -> None:
    """Inside the converter's process: patch the two quirks, add our keys, run its ``main``."""
    sys.path[:0] = [llama_dir, str(Path(llama_dir) / "gguf-py")]
    sys.argv = ["convert_hf_to_gguf.py", *argv]
    import convert_hf_to_gguf
    import gguf
    from conversion import base, qwenvl

    model_dir = argv[0]
    pre_name = pre_tokenizer_name(model_dir)
    original_pre = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return original_pre(self, tokenizer)
        except NotImplementedError:
            if pre_name is None:
                raise
            base.logger.warning("unknown pre-tokenizer fingerprint; tokenizer.json says %s", pre_name)
            return pre_name

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre

    original_mmproj_init = base.MmprojModel.__init__

    def mmproj_init(self, *args, **kwargs):
        original_mmproj_init(self, *args, **kwargs)
        if self.block_count < 3:  # visual.merger.mlp.2 is looked up as block id 2
            self.tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, 3)

    base.MmprojModel.__init__ = mmproj_init

    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        if not (Path(model_dir) / "tokenizer.model").is_file():
            qwenvl.Qwen2VLModel.set_vocab = lambda self: self._set_vocab_gpt2()

    min_pixels, max_pixels = (int(v) for v in os.environ["HMER_GGUF_BOUNDS"].split(","))
    original_prepare = base.ModelBase.prepare_metadata

    def prepare_metadata(self, vocab_only):
        original_prepare(self, vocab_only)
        self.gguf_writer.add_uint32(MIN_PIXELS_KEY, min_pixels)
        self.gguf_writer.add_uint32(MAX_PIXELS_KEY, max_pixels)

    base.ModelBase.prepare_metadata = prepare_metadata
    convert_hf_to_gguf.main()


def _convert_one(llama_dir: Path, model_dir: Path, outfile: Path, outtype: str, mmproj: bool) -> None:
    argv = [
        str(model_dir),
        "--outfile",
        str(outfile),
        "--outtype",
        outtype,
        *(["--mmproj"] if mmproj else []),
    ]
    repo = str(Path(__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=pythonpath, HMER_GGUF_BOUNDS=",".join(map(str, read_bounds(model_dir))))
    command = [sys.executable, "-m", "train.export.gguf", "_run", str(llama_dir), *argv]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not outfile.is_file():
        raise GGUFError(f"convert_hf_to_gguf.py failed on {model_dir}: {result.stderr.strip()[-2000:]}")


def convert(
    model_dir: str | Path,
    output_dir: str | Path,
    outtype: str = "f16",
    cache: str | Path | None = None,
    overwrite: bool = False,
    provenance_source=None,
) -> dict[str, Path]:
    """``{"model": ..., "mmproj": ...}``: the language model in ``outtype`` and the f16 mmproj.
    ``provenance_source``: the ``ModelSource`` to record in ``export_provenance.json`` (default:
    ``model_dir`` itself; an adapter merged first records the adapter)."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not (model_dir / "config.json").is_file():
        raise GGUFError(f"{model_dir} is not a model folder (no config.json): give a merged export")
    if outtype not in CONVERTER_TYPES + QUANTIZE_TYPES:
        raise GGUFError(
            f"unknown GGUF type {outtype!r}; choose one of {', '.join(CONVERTER_TYPES + QUANTIZE_TYPES)}"
        )
    quantize = quantize_binary() if outtype in QUANTIZE_TYPES else None
    if outtype in QUANTIZE_TYPES and quantize is None:
        raise GGUFError(
            f"{outtype} needs llama.cpp's llama-quantize (not found on PATH or in LLAMA_QUANTIZE): "
            f"build llama.cpp, or export {'/'.join(CONVERTER_TYPES)} which the converter writes itself"
        )
    llama_dir = converter_dir(cache)
    if not (llama_dir / "convert_hf_to_gguf.py").is_file():
        raise GGUFError(f"llama.cpp's converter is not in {llama_dir}: run `make fetch-llama-cpp` first")
    from data_prep.output_lock import OutputLocked, output_lock
    from train.export.provenance import check_output_dir
    from train.modeling import ModelSource

    source = provenance_source or ModelSource(base=str(model_dir))
    check_output_dir(output_dir, source, overwrite)  # an input or a folder not an export: refused
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output_lock(output_dir, what="export"):
            return _convert_locked(llama_dir, model_dir, output_dir, outtype, quantize, source)
    except OutputLocked as err:
        raise GGUFError(str(err)) from None


def _convert_locked(llama_dir: Path, model_dir: Path, output_dir: Path, outtype: str, quantize, source):
    from train.export.provenance import write_export_provenance

    with tempfile.TemporaryDirectory(dir=output_dir.parent, prefix=f".{output_dir.name}.") as tmp:
        staging = Path(tmp)
        write_export_provenance(staging, source, "gguf")
        first_type = "f16" if quantize else outtype
        model_file = staging / f"model-{first_type}.gguf"
        _convert_one(llama_dir, model_dir, model_file, first_type, mmproj=False)
        if quantize:
            quantized = staging / f"model-{outtype}.gguf"
            subprocess.run([quantize, str(model_file), str(quantized), outtype], check=True)
            model_file.unlink()
            model_file = quantized
        _convert_one(llama_dir, model_dir, staging / "mmproj-model-f16.gguf", "f16", mmproj=True)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
        staging.mkdir()  # TemporaryDirectory removes it again
    return {"model": output_dir / model_file.name, "mmproj": output_dir / "mmproj-model-f16.gguf"}


def export_gguf(
    source: str | Path,
    output_dir: str | Path,
    outtype: str = "f16",
    dtype: str = "bfloat16",
    overwrite: bool = False,
) -> Path:
    """``train.export --format gguf``: a merged model folder is converted as it is; a LoRA adapter
    is merged first (``train.export.export_merged``, in a temporary folder)."""
    if not (converter_dir() / "convert_hf_to_gguf.py").is_file():
        raise GGUFError(
            f"llama.cpp's converter is not in {converter_dir()}: run `make fetch-llama-cpp` first"
        )
    source = Path(source)
    if (source / "config.json").is_file():
        convert(source, output_dir, outtype, overwrite=overwrite)
        return Path(output_dir)
    from train.export.common import check_input
    from train.export.merged import export_merged
    from train.export.provenance import check_output_dir

    model_source = check_input(source, "gguf", accepts_model_folder=True)
    check_output_dir(output_dir, model_source, overwrite)  # before minutes of merging
    Path(output_dir).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(output_dir).parent, prefix=".merged-for-gguf.") as tmp:
        merged = export_merged(source, Path(tmp) / "merged", dtype=dtype)
        convert(merged, output_dir, outtype, overwrite=overwrite, provenance_source=model_source)
    return Path(output_dir)


def run(source, output_dir: Path, options) -> Path:
    """The registry's entry point (``options``: :class:`train.export.options.ExportOptions`): a
    merged model folder is converted as it is, a LoRA adapter merged first."""
    path = source.adapter or source.base
    return export_gguf(path, output_dir, options.gguf_type, dtype=options.dtype, overwrite=options.overwrite)


def presize(image_path: str | Path, output: str | Path, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The image exactly as the HF processor sees it (``prepare_image`` within the bounds, which
    ends on Qwen's 28-px grid), saved as PNG: llama.cpp then has nothing left to resize.
    Returns (width, height)."""
    from PIL import Image

    from data_prep.contract import ImageBounds, prepare_image

    prepared = prepare_image(
        Image.open(image_path), ImageBounds(min_pixels=min_pixels, max_pixels=max_pixels)
    )
    prepared.save(output, format="PNG")
    return prepared.size


def image_token_bounds(min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The pixel bounds as llama.cpp's image-token bounds (``--image-min-tokens`` /
    ``--image-max-tokens``): one token per 28 x 28 pixels."""
    return max(1, min_pixels // (28 * 28)), max(1, max_pixels // (28 * 28))


def gguf_bounds(path: str | Path, cache: str | Path | None = None) -> tuple[int, int]:
    """The ``hmer.image.*`` bounds stored in a GGUF file (read with the cached gguf-py)."""
    sys.path.insert(0, str(converter_dir(cache) / "gguf-py"))
    import gguf

    fields = gguf.GGUFReader(path).fields
    if MAX_PIXELS_KEY not in fields:
        raise GGUFError(f"{path} has no {MAX_PIXELS_KEY}: not exported by this project; pass the bounds")
    return int(fields[MIN_PIXELS_KEY].contents()), int(fields[MAX_PIXELS_KEY].contents())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_run"]:
        _run_converter(argv[1], argv[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m train.export.gguf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_p = sub.add_parser("fetch", help="unpack llama.cpp's converter from the PyPI sdist into the cache")
    fetch_p.add_argument("--cache", default=None)
    conv = sub.add_parser("convert", help="a merged model folder -> model-TYPE.gguf + mmproj-model-f16.gguf")
    conv.add_argument("model_dir")
    conv.add_argument("output_dir")
    conv.add_argument("--outtype", default="f16", help=f"{', '.join(CONVERTER_TYPES + QUANTIZE_TYPES)}")
    conv.add_argument("--cache", default=None)
    conv.add_argument("--overwrite", action="store_true")
    pre = sub.add_parser("presize", help="an image -> the PNG to give llama.cpp (the project's pre-sizing)")
    pre.add_argument("image")
    pre.add_argument("output")
    pre.add_argument("--gguf", help="read the bounds from this GGUF (model or mmproj)")
    pre.add_argument("--min-pixels", type=int)
    pre.add_argument("--max-pixels", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "presize":
            if args.gguf:
                bounds = gguf_bounds(args.gguf)
            elif args.min_pixels and args.max_pixels:
                bounds = (args.min_pixels, args.max_pixels)
            else:
                raise GGUFError("give --gguf FILE or both --min-pixels and --max-pixels")
            width, height = presize(args.image, args.output, *bounds)
            low, high = image_token_bounds(*bounds)
            print(
                f"{args.output}: {width}x{height}; run llama-mtmd-cli with --image-min-tokens {low} --image-max-tokens {high}"
            )
        elif args.command == "fetch":
            print(fetch(args.cache))
        else:
            for kind, path in convert(
                args.model_dir, args.output_dir, args.outtype, args.cache, args.overwrite
            ).items():
                print(f"{kind}: {path}")
    except (GGUFError, FileExistsError, subprocess.CalledProcessError, RuntimeError) as err:
        print(f"gguf export failed: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
