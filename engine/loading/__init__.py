"""Getting weights into models: safetensors checkpoints, meta-device loading, FP8 dequantisation,
our int8 matrix storage, hub downloads and memory estimates. Plain PyTorch and huggingface_hub; no Qt."""

from engine.loading.fp8 import dequantize_fp8_linear, dequantized_tensors, fp8_linear_prefixes, is_fp8_linear
from engine.loading.hub import (
    REPO_ID,
    VARIANTS,
    DownloadCancelled,
    allow_patterns_for,
    download_variant,
    weight_dir,
)
from engine.loading.int8 import dequantize_int8, int8_dequantized_tensors, quantize_int8
from engine.loading.memory import (
    MemoryEstimate,
    check_fits,
    device_memory_bytes,
    estimate_memory,
    kv_bytes_per_chunk,
    vae_parameter_count,
)
from engine.loading.module_loading import LazyTensor, check_keys_and_shapes, dtype_policy, load_into_module
from engine.loading.safetensors_io import CheckpointReader, save_sharded

__all__ = [
    "CheckpointReader", "save_sharded",
    "LazyTensor", "load_into_module", "check_keys_and_shapes", "dtype_policy",
    "is_fp8_linear", "dequantize_fp8_linear", "dequantized_tensors", "fp8_linear_prefixes",
    "quantize_int8", "dequantize_int8", "int8_dequantized_tensors",
    "REPO_ID", "VARIANTS", "DownloadCancelled", "allow_patterns_for", "download_variant", "weight_dir",
    "MemoryEstimate", "estimate_memory", "device_memory_bytes", "check_fits", "kv_bytes_per_chunk",
    "vae_parameter_count",
]
