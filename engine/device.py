"""Choosing the device and the model dtype: cuda > mps > cpu, bfloat16 on accelerators, float32 on CPUs."""

from __future__ import annotations

import torch

from magi_engine.errors import DeviceError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str = "auto") -> torch.device:
    choice = (preference or "auto").lower()
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("No CUDA GPU is available to this program. Choose 'cpu' (slower) or install a CUDA "
                              "build of PyTorch for your GPU.")
        return torch.device(choice)
    if choice == "mps":
        if not mps_available():
            raise DeviceError("Apple's Metal (mps) backend is not available here. Choose 'cpu'.")
        return torch.device("mps")
    if choice == "cpu":
        return torch.device("cpu")
    if choice != "auto":
        raise DeviceError(f"Unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_expandable_segments() -> None:
    """Let PyTorch's CUDA allocator grow its segments instead of caching fixed blocks (unless the user set
    PYTORCH_CUDA_ALLOC_CONF): a window's activations change size every stage, and fixed blocks left
    the 4.5B at 832x480 out of memory under a 16 GiB cap with 13.8 GiB in use."""
    import os
    import warnings

    if "PYTORCH_CUDA_ALLOC_CONF" in os.environ or "PYTORCH_ALLOC_CONF" in os.environ:
        return
    setting = getattr(torch.cuda.memory, "_set_allocator_settings", None)
    if setting is not None:
        try:
            with warnings.catch_warnings():  # torch 2.11 calls this spelling deprecated; it is the one measured
                warnings.simplefilter("ignore", FutureWarning)
                setting("expandable_segments:True")
        except RuntimeError:  # a platform without expandable segments: the default allocator
            pass


def default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.bfloat16
    return torch.float32


def parse_dtype(name: str | None, device: torch.device) -> torch.dtype:
    if name in (None, "", "auto"):
        return default_dtype(device)
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise DeviceError(f"Unknown dtype {name!r}; choose float32, bfloat16 or float16.")
    return table[name]
