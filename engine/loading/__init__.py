"""Getting weights into models: safetensors checkpoints, meta-device loading, FP8 dequantisation,
our int8 matrix storage, hub downloads and memory estimates. Plain PyTorch and huggingface_hub; no Qt.

The names below load with their module on first use (PEP 562): `magi_engine.loading.memory` (estimates) and
`magi_engine.loading.hub` (downloads) cost no torch, so the Settings dialog can use them on the GUI thread.
"""

import importlib

_HOMES = {
    "magi_engine.loading.fp8": ("dequantize_fp8_linear", "dequantized_tensors", "fp8_linear_prefixes", "is_fp8_linear"),
    "magi_engine.loading.hub": ("REPO_ID", "VARIANTS", "DownloadCancelled", "allow_patterns_for", "download_variant",
                           "weight_dir"),
    "magi_engine.loading.int8": ("dequantize_int8", "int8_dequantized_tensors", "quantize_int8"),
    "magi_engine.loading.memory": ("MemoryEstimate", "check_fits", "device_memory_bytes", "estimate_memory",
                              "kv_bytes_per_chunk", "vae_parameter_count"),
    "magi_engine.loading.module_loading": ("LazyTensor", "check_keys_and_shapes", "dtype_policy", "load_into_module"),
    "magi_engine.loading.safetensors_io": ("CheckpointReader", "save_sharded"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str):
    if name in _HOME_OF:
        return getattr(importlib.import_module(_HOME_OF[name]), name)
    raise AttributeError(f"module 'magi_engine.loading' has no attribute {name!r}")
