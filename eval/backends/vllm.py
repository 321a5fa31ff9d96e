"""vLLM backend (GPU only): offline ``LLM.generate`` with multi-modal prompt dicts.

vLLM is imported lazily, inside the backend, so this module (and its request builder, which the
prompt-parity test checks on a CPU) imports without it.

* Requests: ``{"prompt": prompt_text(processor, prompt), "multi_modal_data": {"image": img}}``
  where ``img`` went through ``contract.prepare_image``, and the engine gets the contract's pixel
  bounds as ``mm_processor_kwargs``: the same chat text, image and resize as training and the HF
  backend (:func:`build_request`, :func:`engine_kwargs`).
* Greedy by default: ``temperature=0``, no repetition penalty, stop at Qwen's end tokens.
* ``tp``: vLLM's tensor parallelism. ``dp``: one worker process per replica, each pinned to its
  own ``tp`` GPUs through ``CUDA_VISIBLE_DEVICES``, each generating a contiguous shard.
* LoRA adapters are served directly (``LoRARequest``) when vLLM can apply all of them; vLLM
  ignores LoRA weights on the vision tower (and cannot serve ``modules_to_save`` or DoRA), so such
  adapters are merged into the base first (``train.export.export_merged``, into a temporary
  folder), and the log says so and why (:func:`inspect_adapter`, :func:`merge_for_vllm`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.contract import DEFAULT_BOUNDS, IMAGE_FACTOR, ImageBounds, prepare_image
from eval.backends import Backend, BackendOptions, stop_token_ids

logger = logging.getLogger(__name__)

IMAGE_PAD = "<|image_pad|>"
#: LoRA ranks vLLM accepts for ``max_lora_rank``.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
#: Room for the chat text around the image (system turn, prompt, error-driven predictions).
PROMPT_TEXT_TOKENS = 512
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Module-name fragments of Qwen2.5-VL's vision tower (transformers 5: ``model.visual``).
VISION_TOWER_MARKERS = ("visual.",)


# --------------------------------------------------------------------------- #
# Pure request building (testable without vLLM)
# --------------------------------------------------------------------------- #


def build_request(
    processor_or_tokenizer: Any, image: Image.Image, prompt: str, bounds: ImageBounds = DEFAULT_BOUNDS
) -> dict[str, Any]:
    """The vLLM prompt dict for one (image, prompt) pair: the chat text of ``train.inputs`` and
    the image prepared exactly as for training."""
    from train.inputs import prompt_text

    return {
        "prompt": prompt_text(processor_or_tokenizer, prompt),
        "multi_modal_data": {"image": prepare_image(image, bounds)},
    }


def build_requests(
    processor_or_tokenizer: Any,
    images: list[Image.Image],
    prompts: list[str],
    bounds: ImageBounds = DEFAULT_BOUNDS,
) -> list[dict[str, Any]]:
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    return [build_request(processor_or_tokenizer, im, p, bounds) for im, p in zip(images, prompts)]


def request_token_ids(processor: Any, request: dict[str, Any]) -> list[int]:
    """The prompt token ids vLLM feeds the model for ``request``.

    vLLM tokenizes the prompt text with the model's tokenizer, runs the HF image processor (with
    the engine's ``mm_processor_kwargs``) and expands the single ``<|image_pad|>`` into one token
    per merged patch group: ``t * h * w / merge_size**2``. Reproduced here with the same tokenizer
    and image processor so a test can compare it with the HF backend's ids.
    """
    tokenizer = processor.tokenizer
    image_processor = processor.image_processor
    text_ids = tokenizer(request["prompt"], add_special_tokens=False)["input_ids"]
    pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    if text_ids.count(pad_id) != 1:
        raise ValueError(
            f"expected exactly one {IMAGE_PAD} in the request text, found {text_ids.count(pad_id)}"
        )
    grid = image_processor(images=[request["multi_modal_data"]["image"]], return_tensors="pt")[
        "image_grid_thw"
    ][0]
    merge = getattr(image_processor, "merge_size", 2)
    n_image_tokens = int(grid.prod()) // (merge * merge)
    at = text_ids.index(pad_id)
    return text_ids[:at] + [pad_id] * n_image_tokens + text_ids[at + 1 :]


def default_max_model_len(bounds: ImageBounds, max_new_tokens: int) -> int:
    """Longest sequence a request can need: image tokens + chat text + answer, rounded up to 256."""
    image_tokens = bounds.max_pixels // (IMAGE_FACTOR * IMAGE_FACTOR) + 2
    needed = image_tokens + PROMPT_TEXT_TOKENS + max_new_tokens
    return -(-needed // 256) * 256


def engine_kwargs(
    model: str,
    *,
    bounds: ImageBounds = DEFAULT_BOUNDS,
    tp: int = 1,
    max_new_tokens: int = 256,
    max_model_len: int | None = None,
    dtype: str = "auto",
    seed: int = 0,
    lora_rank: int | None = None,
    tokenizer: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``: one image per prompt, no video, the contract's bounds."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tokenizer": tokenizer or model,
        "dtype": "bfloat16" if dtype == "auto" else dtype,
        "tensor_parallel_size": tp,
        "seed": seed,
        "max_model_len": max_model_len or default_max_model_len(bounds, max_new_tokens),
        "limit_mm_per_prompt": {"image": 1, "video": 0},
        "mm_processor_kwargs": bounds.processor_kwargs(),
        "trust_remote_code": False,
    }
    if lora_rank is not None:
        kwargs["enable_lora"] = True
        kwargs["max_loras"] = 1
        kwargs["max_lora_rank"] = next((r for r in VLLM_LORA_RANKS if r >= lora_rank), lora_rank)
    kwargs.update(extra)
    return kwargs


def sampling_kwargs(
    max_new_tokens: int,
    stop_ids: list[int],
    *,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    ignore_eos: bool = False,
    detokenize: bool = True,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (greedy unless ``temperature`` > 0)."""
    kwargs: dict[str, Any] = {
        "n": n,
        "temperature": temperature,
        "top_p": top_p if temperature > 0 else 1.0,
        "max_tokens": max_new_tokens,
        "repetition_penalty": 1.0,
        "stop_token_ids": list(stop_ids),
        "ignore_eos": ignore_eos,
        "detokenize": detokenize,
        "skip_special_tokens": True,
    }
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


# --------------------------------------------------------------------------- #
# LoRA adapters
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class AdapterPlan:
    """How vLLM can run a LoRA adapter: served directly, or merged into its base first (and why)."""

    adapter: str
    base: str
    rank: int
    merge_reasons: tuple[str, ...] = ()

    @property
    def serve_directly(self) -> bool:
        return not self.merge_reasons


def _target_names(config: dict[str, Any]) -> list[str]:
    targets = config.get("target_modules") or []
    return [targets] if isinstance(targets, str) else list(targets)


def inspect_adapter(adapter_dir: str | Path) -> AdapterPlan:
    """Read an adapter's config and weight names (no tensors loaded) and decide serve vs merge."""
    adapter_dir = Path(adapter_dir)
    config_file = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_file}: cannot read the adapter config ({err})") from err
    reasons: list[str] = []
    weights = adapter_dir / ADAPTER_WEIGHTS
    if weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as handle:
            keys = list(handle.keys())
        vision = sorted({k for k in keys if any(m in k for m in VISION_TOWER_MARKERS)})
        if vision:
            reasons.append(
                f"{len(vision)} LoRA tensors target the vision tower (e.g. {vision[0]}); vLLM applies LoRA "
                "to the language model only and would silently ignore them"
            )
    else:
        # No weights to inspect: judge from the target modules (a regex string or names).
        targets = _target_names(config)
        if any("visual" in t for t in targets):
            reasons.append(f"target_modules {targets} include the vision tower, which vLLM's LoRA ignores")
    if config.get("modules_to_save"):
        reasons.append(
            f"modules_to_save {config['modules_to_save']} are full weights vLLM's LoRA cannot load"
        )
    if config.get("use_dora"):
        reasons.append("DoRA adapters are not supported by vLLM's LoRA")
    base = config.get("base_model_name_or_path") or ""
    return AdapterPlan(
        adapter=str(adapter_dir), base=base, rank=int(config.get("r", 8)), merge_reasons=tuple(reasons)
    )


def merge_for_vllm(plan: AdapterPlan, out_dir: str | Path, dtype: str = "bfloat16") -> Path:
    """Merge an adapter vLLM cannot serve (``plan.merge_reasons``) into its base, saying why, with
    :func:`train.export.export_merged` (merged in float32 then cast to ``dtype``; safetensors and
    processor files, staged then renamed into ``out_dir``)."""
    from train.export import export_merged

    logger.info(
        "vLLM: merging adapter %s into %s first, because: %s",
        plan.adapter,
        plan.base,
        "; ".join(plan.merge_reasons),
    )
    return export_merged(plan.adapter, out_dir, dtype=dtype)


# --------------------------------------------------------------------------- #
# Running vLLM
# --------------------------------------------------------------------------- #


def _run_llm(llm: Any, requests: list[dict[str, Any]], params: dict[str, Any], lora: Any) -> list[list[str]]:
    from vllm import SamplingParams

    outputs = llm.generate(requests, SamplingParams(**params), lora_request=lora, use_tqdm=False)
    return [[c.text for c in out.outputs] for out in outputs]


def _lora_request(path: str | None):
    if path is None:
        return None
    from vllm.lora.request import LoRARequest

    return LoRARequest("adapter", 1, path)


def _worker(conn: Any, gpu_ids: list[str], kwargs: dict[str, Any], lora_path: str | None) -> None:
    """One data-parallel replica: its own GPUs, its own engine, requests over a pipe."""
    # Must be set before vLLM (and CUDA) initialise in this process.
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    from vllm import LLM

    try:
        llm = LLM(**kwargs)
        lora = _lora_request(lora_path)
        conn.send(("ready", None))
    except Exception as err:  # report to the parent instead of dying silently
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    while True:
        message = conn.recv()
        if message is None:
            break
        requests, params = message
        try:
            conn.send(("ok", _run_llm(llm, requests, params, lora)))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))


def visible_gpus() -> list[str]:
    """GPU ids this process may use (``CUDA_VISIBLE_DEVICES`` or all the driver sees)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip():
        return [g.strip() for g in env.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(
        self,
        model: str,
        options: BackendOptions = BackendOptions(),
        *,
        detokenize: bool = True,
        chunk_size: int = 1024,
        **engine_options: Any,
    ) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "the vLLM backend needs vllm (GPU machines: `make install-gpu`); use --backend hf otherwise"
            ) from err
        from train.modeling import load_processor, resolve_source

        super().__init__(options)
        self.detokenize = detokenize
        # vLLM batches internally; hand it many requests at once (batch_size only sets a floor).
        self.chunk_size = max(chunk_size, options.batch_size)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._workers: list[tuple[Any, Any]] = []
        self._llm = None

        source = resolve_source(model)
        lora_path, lora_rank, weights = None, None, source.base
        if source.adapter:
            plan = inspect_adapter(source.adapter)
            if plan.serve_directly:
                lora_path, lora_rank = source.adapter, plan.rank
                logger.info(
                    "vLLM: serving LoRA adapter %s (rank %d) on %s", source.adapter, plan.rank, source.base
                )
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="merged-adapter-")
                weights = str(merge_for_vllm(plan, Path(self._tmp.name) / "model"))
                logger.info("vLLM: merged model written to %s (removed on close)", weights)
        self.processor = load_processor(model, options.bounds)
        self.stop_ids = stop_token_ids(self.processor.tokenizer)
        kwargs = engine_kwargs(
            weights,
            bounds=options.bounds,
            tp=options.tp,
            max_new_tokens=options.max_new_tokens,
            dtype=options.dtype,
            seed=options.seed,
            lora_rank=lora_rank,
            **engine_options,
        )
        if options.dp == 1:
            from vllm import LLM

            self._llm = LLM(**kwargs)
            self._lora = _lora_request(lora_path)
        else:
            self._start_workers(kwargs, lora_path, options.tp, options.dp)
        logger.info(
            "vLLM backend: %s, tp=%d, dp=%d, at most %d new tokens",
            model,
            options.tp,
            options.dp,
            options.max_new_tokens,
        )

    def _start_workers(self, kwargs: dict[str, Any], lora_path: str | None, tp: int, dp: int) -> None:
        gpus = visible_gpus()
        if len(gpus) < tp * dp:
            raise ValueError(
                f"tp={tp} x dp={dp} needs {tp * dp} GPUs; {len(gpus)} visible ({','.join(gpus)})"
            )
        context = multiprocessing.get_context("spawn")
        for rank in range(dp):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker,
                args=(child, gpus[rank * tp : (rank + 1) * tp], kwargs, lora_path),
                daemon=True,
            )
            process.start()
            self._workers.append((process, parent))
        for rank, (_, conn) in enumerate(self._workers):
            status, detail = conn.recv()
            if status != "ready":
                self.close()
                raise RuntimeError(f"vLLM data-parallel worker {rank} failed to start: {detail}")

    def _dispatch(self, requests: list[dict[str, Any]], params: dict[str, Any]) -> list[list[str]]:
        if self._llm is not None:
            return _run_llm(self._llm, requests, params, self._lora)
        # Contiguous shards, one per replica; results are concatenated back in order. The pipe
        # carries our own objects between our own processes (never data from a file).
        size = -(-len(requests) // len(self._workers))
        shards = [requests[i : i + size] for i in range(0, len(requests), size)]
        for (_, conn), shard in zip(self._workers, shards):
            conn.send((shard, params))
        results: list[list[str]] = []
        for rank, ((_, conn), _) in enumerate(zip(self._workers, shards)):
            status, payload = conn.recv()
            if status != "ok":
                raise RuntimeError(f"vLLM data-parallel worker {rank}: {payload}")
            results += payload
        return results

    def _params(self, **sampling: Any) -> dict[str, Any]:
        return sampling_kwargs(
            self.options.max_new_tokens,
            self.stop_ids,
            ignore_eos=self.options.ignore_eos,
            detokenize=self.detokenize,
            seed=self.options.seed if sampling else None,
            **sampling,
        )

    def _generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        requests = build_requests(self.processor, images, prompts, self.options.bounds)
        return [texts[0] for texts in self._dispatch(requests, self._params())]

    def _sample(
        self, images: list[Image.Image], prompts: list[str], n: int, temperature: float, top_p: float
    ) -> list[list[str]]:
        requests = build_requests(self.processor, images, prompts, self.options.bounds)
        return self._dispatch(requests, self._params(n=n, temperature=temperature, top_p=top_p))

    def close(self) -> None:
        for process, conn in self._workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        self._workers = []
        self._llm = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
