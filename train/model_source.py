"""What a model name points at: a hub id or model folder (the base), optionally with a LoRA adapter
folder on top (its base named in ``adapter_config.json``). Entry points resolve a name once into a
:class:`ModelSource` and pass it down (:func:`as_source`); loading lives in :mod:`train.modeling`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"


class ModelLoadError(RuntimeError):
    """A model or processor could not be loaded; the message says what to check."""


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: a base model, optionally with a LoRA adapter on top."""

    base: str
    adapter: str | None = None

    @property
    def name(self) -> str:  # what the user named: the adapter folder, else the base
        return self.adapter or self.base

    @property
    def processor_path(self) -> str:
        """Adapters saved by our trainer carry the processor files; fall back to the base."""
        if self.adapter and (Path(self.adapter) / "tokenizer_config.json").is_file():
            return self.adapter
        return self.base


def _looks_like_a_path(name: str) -> bool:
    """Hub ids are ``name`` or ``namespace/name``; anything else is meant as a local folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def resolve_source(name_or_path: str) -> ModelSource:
    """Tell a base model from a LoRA adapter folder (whose base is named in its config)."""
    path = Path(name_or_path)
    config_file = path / ADAPTER_CONFIG
    if config_file.is_file():
        try:
            base = json.loads(config_file.read_text())["base_model_name_or_path"]
        except (KeyError, json.JSONDecodeError) as err:
            raise ModelLoadError(f"{config_file} does not name its base model: {err}") from err
        if not base:
            raise ModelLoadError(f"{config_file} has an empty base_model_name_or_path")
        return ModelSource(base=base, adapter=str(path))
    if not path.exists() and _looks_like_a_path(name_or_path):
        raise ModelLoadError(f"model folder {name_or_path} does not exist")
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} is neither a model folder (no config.json) nor a LoRA adapter folder (no {ADAPTER_CONFIG})"
        )
    return ModelSource(base=name_or_path)


def as_source(model: str | ModelSource) -> ModelSource:
    """``model`` resolved (a path or hub id) or as given: entry points resolve once, pass it down."""
    return model if isinstance(model, ModelSource) else resolve_source(model)


_HUB_CHECKED: set[str] = set()


def check_hub_reachable(name: str, timeout: float = 3.0) -> None:
    """For a hub id, fail in one line when the hub cannot be reached instead of letting
    huggingface_hub retry for minutes. Offline mode (``HF_HUB_OFFLINE=1``) and local folders skip
    the check (offline loads use the local cache)."""
    import socket
    from urllib.parse import urlparse

    if Path(name).exists():
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if host in _HUB_CHECKED:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ModelLoadError(
            f"cannot reach the Hugging Face hub ({host}: {err.strerror or err}) to fetch {name!r}: set "
            "HF_HUB_OFFLINE=1 to use models already in the local cache, or give a local model folder"
        ) from None
    _HUB_CHECKED.add(host)
