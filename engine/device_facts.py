"""What the machine offers to run a model on: each device, its name and its memory, as plain data.

    facts = read_device_facts()          # imports torch: call it where the engine runs (the engine thread)
    facts.available()                    # {"auto": True, "cuda": False, "mps": False, "cpu": True}
    facts.device("auto").free_bytes      # what the device "auto" picks has free now (None: unknown)

DeviceFacts itself costs no torch, so the GUI can hold and show them: the studio's engine worker reads
them once on its thread (EngineWorker.ask_device_facts) and the Settings dialog only reads the copy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cuda" | "mps" | "cpu"
    available: bool
    #: "NVIDIA H100 80GB HBM3", "Apple GPU (Metal)", "CPU" ("" when not available).
    name: str = ""
    #: Bytes a new model could use now (magi_engine.loading.memory.device_memory_bytes), None when unknown.
    free_bytes: int | None = None
    total_bytes: int | None = None
    #: A CUDA GPU with FP8 matmuls (magi_engine.dit.fp8_linear.native_fp8_supported): FP8 checkpoints stay FP8.
    fp8_matmul: bool = False


@dataclass(frozen=True)
class DeviceFacts:
    devices: tuple[DeviceInfo, ...]
    #: The device "auto" picks (magi_engine.device.pick_device): cuda > mps > cpu.
    auto: str = "cpu"
    #: How many CUDA GPUs this computer shows (a several-GPU run may use them all).
    cuda_count: int = 0

    def device(self, choice: str = "auto") -> DeviceInfo:
        """The device a choice ("auto", "cuda", "cuda:1", "mps", "cpu") names; an unavailable one if unknown."""
        kind = self.auto if choice in (None, "", "auto") else choice.split(":")[0]
        return next((d for d in self.devices if d.kind == kind), DeviceInfo(kind, False))

    def available(self) -> dict[str, bool]:
        """Each device choice and whether this machine has it."""
        return {"auto": True, **{d.kind: d.available for d in self.devices}, "cpu": True}


def read_device_facts() -> DeviceFacts:
    """Ask torch (imported here) about cuda, mps and the CPU. On a GPU this creates the CUDA context: call
    it on the thread that will run the model."""
    import torch

    from magi_engine.device import mps_available, pick_device
    from magi_engine.dit.fp8_linear import native_fp8_supported
    from magi_engine.loading.memory import device_memory_bytes

    devices = []
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        devices.append(DeviceInfo("cuda", True, properties.name, device_memory_bytes(f"cuda:{index}"),
                                  int(properties.total_memory), native_fp8_supported(f"cuda:{index}")))
    else:
        devices.append(DeviceInfo("cuda", False))
    if mps_available():
        devices.append(DeviceInfo("mps", True, "Apple GPU (Metal)", device_memory_bytes("mps")))
    else:
        devices.append(DeviceInfo("mps", False))
    devices.append(DeviceInfo("cpu", True, "CPU", device_memory_bytes("cpu"), _meminfo_total()))
    return DeviceFacts(tuple(devices), pick_device("auto").type,
                       torch.cuda.device_count() if torch.cuda.is_available() else 0)


def _meminfo_total() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
