"""The settings dialog: choices persist and reach the open project, Apply reloads the model with its progress
shown, folders are checked with a clear message, hub variants show memory and cache state from a faked cache
(offline, no network), and a download runs on qasync with progress and can be cancelled."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import qasync
from huggingface_hub import _snapshot_download, constants
from huggingface_hub.hf_api import HfApi, RepoFile
import torch
from PySide6.QtCore import QPoint, Qt
from safetensors.torch import save_file

from magi_engine.loading.hub import weight_dir
from magi_engine.loading.memory import GIB, estimate_memory
from magi_engine.variants import MAGI_VARIANTS
from magi_studio.dialogs.settings_dialog import SettingsDialog
from magi_studio.document.model import ProjectSettings, new_project
from magi_studio.document.store import ProjectStore
from magi_studio.engine_worker import EngineState, LoadProgress
from magi_studio.document_session import DocumentSession

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access blocked in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of our own, offline mode as the test suite has it (restored afterwards)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    return cache


def repo_files(variant: str) -> dict[str, object]:
    wdir = weight_dir(variant)
    return {f"{wdir}/model.safetensors": {"a": torch.ones(2048)}, f"{wdir}/config.json": "{}",
            "ckpt/vae/config.json": "{}", "ckpt/vae/model.safetensors": {"v": torch.zeros(2)},
            "ckpt/t5/t5-v1_1-xxl/config.json": "{}", "ckpt/t5/t5-v1_1-xxl/model.safetensors": {"t": torch.zeros(2)}}


def write_files(root: Path, files: dict) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(content, str(path)) if isinstance(content, dict) else path.write_text(content)


def cache_variant(cache: Path, variant: str) -> None:
    repo = cache / "models--sand-ai--MAGI-1"
    write_files(repo / "snapshots" / COMMIT, repo_files(variant))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def loop(qapp):
    """qasync's event loop over the test's QApplication (qtbot.waitUntil does not run asyncio)."""
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    event_loop.close()
    asyncio.set_event_loop(None)


def run_until(loop, condition, timeout_s: float = 15.0) -> None:
    """waitUntil for asyncio work: run the qasync loop (Qt events included) until `condition()` holds."""
    async def wait():
        deadline = loop.time() + timeout_s
        while not condition():
            assert loop.time() < deadline, "timed out"
            await asyncio.sleep(0.01)

    loop.run_until_complete(wait())


def click(qtbot, button) -> None:
    """Click a radio button or check box on its indicator (a wide one does not take clicks past its text)."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


def open_dialog(qtbot, settings, **kwargs) -> SettingsDialog:
    dialog = SettingsDialog(settings, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def test_choices_persist_and_reach_the_open_project(qtbot, isolated_settings, tmp_path, hub_cache):
    project = new_project(ProjectSettings())
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    dialog = open_dialog(qtbot, isolated_settings, session=session)
    assert dialog.mini_radio.isChecked() and dialog.size_default_check.text() == "Model default (128 × 128)"
    cuda = dialog.device_combo.model().item(dialog.device_combo.findData("cuda"))
    assert cuda.isEnabled() == torch.cuda.is_available()  # devices this machine lacks cannot be chosen
    dialog.tabs.setCurrentIndex(1)  # Generation
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    click(qtbot, dialog.size_default_check)
    dialog.width_spin.setValue(250)  # not a multiple of 16: rounded on Apply
    dialog.height_spin.setValue(192)
    dialog.steps_combo.setCurrentIndex(dialog.steps_combo.findData(16))
    dialog.window_combo.setCurrentIndex(dialog.window_combo.findData(2))
    click(qtbot, dialog.guidance_default_check)
    dialog.guidance_spin.setValue(5.5)
    dialog.tabs.setCurrentIndex(0)  # Model
    click(qtbot, dialog.offline_check)
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)

    s = isolated_settings
    assert (s.model, s.device, s.width, s.height, s.steps, s.window, s.guidance, s.hub_offline) == (
        "studio-mini", "cpu", 256, 192, 16, 2, 5.5, True)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE
    p = project.settings
    assert (p.width, p.height, p.steps, p.window, p.guidance_scale) == (256, 192, 16, 2, 5.5)
    session.undo_stack.undo()  # one undoable step
    assert (project.settings.width, project.settings.steps) == (128, None)

    again = open_dialog(qtbot, isolated_settings)
    assert again.device_combo.currentData() == "cpu" and not again.size_default_check.isChecked()
    assert (again.width_spin.value(), again.height_spin.value()) == (256, 192)
    assert again.steps_combo.currentData() == 16 and again.window_combo.currentData() == 2
    assert again.guidance_spin.value() == 5.5 and again.offline_check.isChecked()
    click(qtbot, again.offline_check)
    again.apply()
    assert not isolated_settings.hub_offline and "HF_HUB_OFFLINE" not in os.environ


def test_apply_reloads_the_model_and_shows_its_progress(qtbot, isolated_settings, engine_worker, tiny_session):
    job = engine_worker.use_session(tiny_session)
    qtbot.waitUntil(lambda: job not in engine_worker.live_jobs, timeout=5000)
    messages = []
    engine_worker.event.connect(lambda job, event: isinstance(event, LoadProgress) and messages.append(event.message))
    dialog = open_dialog(qtbot, isolated_settings, worker=engine_worker)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cpu"))
    assert dialog.apply()  # the engine holds "tiny": studio-mini is loaded
    qtbot.waitUntil(lambda: "Loaded" in dialog.load_label.text(), timeout=60_000)
    assert messages and messages[0] == "Loading studio-mini"
    assert engine_worker.model_info.spec == "studio-mini" and engine_worker.state == EngineState.READY
    assert dialog.load_label.text() == "Loaded studio-mini (built in) on cpu." and not dialog.load_bar.isVisible()


def test_folders_are_checked_with_a_clear_message(qtbot, isolated_settings, tmp_path, hub_cache):
    dialog = open_dialog(qtbot, isolated_settings)
    assert dialog.folder_status.isHidden() and dialog.load_label.isHidden()  # nothing to say: no empty gap
    click(qtbot, dialog.folder_radio)
    dialog.folder_edit.setText(str(tmp_path / "nothing"))
    assert "does not exist" in dialog.folder_status.text() and dialog.folder_status.isVisible()
    (tmp_path / "empty").mkdir()
    dialog.folder_edit.setText(str(tmp_path / "empty"))
    assert dialog.folder_status.text().startswith(f"No MAGI-1 weights found in {tmp_path / 'empty'}")
    failures = []
    dialog.failed.connect(failures.append)
    assert not dialog.apply()
    assert failures[0].title == "Checkpoint problem" and "No MAGI-1 weights found" in dialog.load_label.text()
    assert isolated_settings.model == "studio-mini"  # nothing stored

    write_files(tmp_path / "MAGI-1", repo_files("4.5B_distill"))
    dialog.folder_edit.setText(str(tmp_path / "MAGI-1"))
    assert dialog.folder_status.text() == ("MAGI-1 4.5B distilled: weights in ckpt/magi/4.5B_distill/"
                                           "inference_weight.distill · VAE found · T5 found.")
    assert dialog.size_default_check.text() == "Model default (720 × 720)"
    assert dialog.apply() and isolated_settings.model == str(tmp_path / "MAGI-1")


def estimate_gib(name: str) -> float:
    """The engine's memory estimate of a hub variant at its default size (magi_engine.loading.memory)."""
    variant = MAGI_VARIANTS[name]
    return estimate_memory(variant.dit, width=variant.width, height=variant.height, window=variant.sampling.window,
                           cache_chunks=variant.sampling.cache_chunks, fp8=variant.fp8).total_bytes / GIB


def test_hub_variants_show_memory_fit_and_what_the_cache_holds(qtbot, isolated_settings, hub_cache, engine_worker):
    cache_variant(hub_cache, "4.5B_distill")
    isolated_settings.hub_offline = True
    dialog = open_dialog(qtbot, isolated_settings, worker=engine_worker)
    qtbot.waitUntil(lambda: dialog.device_facts is not None, timeout=30_000)  # the engine thread's answer
    memory, fit, status = dialog.variant_status("4.5B_distill")
    assert memory == f"about {estimate_gib('4.5B_distill'):.0f} GiB at 720×720" and status == "Downloaded"
    assert fit.startswith(("Fits ·", "Too large ·")) and fit.endswith("GiB free")
    assert dialog.variant_status("24B_base")[0] == f"about {estimate_gib('24B_base'):.0f} GiB at 1280×720"
    assert dialog.variant_status("24B_base")[2] == "Not downloaded (offline)"
    click(qtbot, dialog.hub_radio)
    dialog.select_variant("4.5B_distill")
    assert dialog.download_button.isEnabled() and dialog.model_spec() == "4.5B_distill"
    assert dialog.apply() and isolated_settings.model == "4.5B_distill"
    assert open_dialog(qtbot, isolated_settings).selected_variant() == "4.5B_distill"


def test_offline_download_of_a_missing_variant_says_so(qtbot, loop, isolated_settings, hub_cache):
    isolated_settings.hub_offline = True
    dialog = open_dialog(qtbot, isolated_settings)
    click(qtbot, dialog.hub_radio)
    dialog.select_variant("24B_distill")
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    run_until(loop, lambda: dialog.download_task is not None and dialog.download_task.done())
    assert "not in the Hugging Face cache" in dialog.download_status.text()
    assert "offline mode is on" in dialog.download_status.text()


@pytest.fixture
def fake_hub(monkeypatch, hub_cache, tmp_path):
    """Online mode over a faked sand-ai/MAGI-1 listing; files arrive in 1 KiB pieces, held after the first."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    variant, source = "4.5B_distill_quant", tmp_path / "remote"
    write_files(source, repo_files(variant))
    sizes = {p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()}
    monkeypatch.setattr(HfApi, "repo_info", lambda self, repo_id, **kw: SimpleNamespace(sha=COMMIT))
    monkeypatch.setattr(HfApi, "list_repo_tree", lambda self, repo_id, **kw: [
        RepoFile(path=path, size=size, oid="0" * 40) for path, size in sizes.items()])
    hub = SimpleNamespace(variant=variant, hold=threading.Event(), started=threading.Event())
    hub.hold.set()

    def fake_file_download(repo_id, *, filename, cache_dir, revision, tqdm_class, **kwargs):
        data = (source / filename).read_bytes()
        bar = tqdm_class(total=len(data), initial=0)
        target = Path(cache_dir) / "models--sand-ai--MAGI-1" / "snapshots" / revision / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".incomplete")  # renamed only when complete, as the hub does
        with open(partial, "wb") as fh:
            for start in range(0, len(data), 1024):
                fh.write(data[start:start + 1024])
                bar.update(len(data[start:start + 1024]))
                bar.update_transfer(len(data[start:start + 1024]))
                hub.started.set()
                assert hub.hold.wait(10)
        partial.rename(target)
        return str(target)

    monkeypatch.setattr(_snapshot_download, "hf_hub_download", fake_file_download)
    return hub


def test_a_download_shows_progress_and_can_be_cancelled(qtbot, loop, isolated_settings, fake_hub):
    dialog = open_dialog(qtbot, isolated_settings)
    click(qtbot, dialog.hub_radio)
    dialog.select_variant(fake_hub.variant)
    assert dialog.variant_status(fake_hub.variant)[2] == "Not downloaded"

    fake_hub.hold.clear()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    run_until(loop, lambda: fake_hub.started.is_set() and dialog.download_bar.value() > 0)
    assert dialog.is_downloading() and dialog.cancel_download_button.isEnabled()
    assert not dialog.download_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_download_button, Qt.MouseButton.LeftButton)
    fake_hub.hold.set()
    run_until(loop, lambda: dialog.download_task.done())
    assert dialog.download_status.text().startswith("Download cancelled") and not dialog.is_downloading()
    assert dialog.variant_status(fake_hub.variant)[2] == "Not downloaded"

    cancelled = dialog.download_task
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)  # again, to the end
    run_until(loop, lambda: dialog.download_task is not cancelled and dialog.download_task.done())
    assert "is in the cache" in dialog.download_status.text() and dialog.download_bar.value() == 1000
    assert dialog.variant_status(fake_hub.variant)[2] == "Downloaded"


def cuda_facts(free_gib: float, *, fp8: bool = True):
    """Device facts as the engine worker would read them on a computer with one CUDA GPU (injected: none here)."""
    from magi_engine.device_facts import DeviceFacts, DeviceInfo

    gpu = DeviceInfo("cuda", True, "NVIDIA Test GPU", int(free_gib * GIB), int(free_gib * GIB), fp8)
    return DeviceFacts((gpu, DeviceInfo("mps", False), DeviceInfo("cpu", True, "CPU", 16 * GIB, 32 * GIB)), "cuda", 1)


def test_fp8_variants_need_their_fp8_weights_on_a_gpu_with_fp8_matmuls(qtbot, isolated_settings, hub_cache):
    # The table counted an FP8 checkpoint as dequantised everywhere: on an H100, where it stays FP8, it showed the
    # 24B distilled fp8 as needing what the bf16 one does.
    dialog = open_dialog(qtbot, isolated_settings)
    dialog._on_device_facts(cuda_facts(80, fp8=False))
    assert dialog.variant_status("24B_distill_quant")[0] == dialog.variant_status("24B_distill")[0]
    dialog._on_device_facts(cuda_facts(80, fp8=True))
    variant = MAGI_VARIANTS["24B_distill_quant"]
    native = estimate_memory(variant.dit, width=variant.width, height=variant.height, window=variant.sampling.window,
                             cache_chunks=variant.sampling.cache_chunks, fp8=True, keep_fp8=True).total_bytes / GIB
    assert native < estimate_gib("24B_distill_quant") - 10
    assert dialog.variant_status("24B_distill_quant")[0] == f"about {native:.0f} GiB at 1280×720"


def test_the_dit_placement_shows_with_a_cuda_gpu_each_mode_with_its_memory_and_what_automatic_takes(
        qtbot, isolated_settings, hub_cache):
    from magi_engine.loading.memory import plan_memory

    dialog = open_dialog(qtbot, isolated_settings)
    page = dialog.engine_page
    assert page.placement_row.isHidden() and page.placement_choice() == "auto"  # this machine: no CUDA facts
    dialog._on_device_facts(cuda_facts(12))  # what EngineWorker.deviceFactsChanged brings on a 12 GiB card
    assert not page.placement_row.isHidden()
    assert not page.placement_combo.isEnabled() and "runs whole on its device" in page.placement_note.text()
    click(qtbot, dialog.hub_radio)
    dialog.select_variant("4.5B_distill_quant")
    click(qtbot, dialog.size_default_check)
    dialog.width_spin.setValue(720)
    dialog.height_spin.setValue(720)
    dialog.window_combo.setCurrentIndex(dialog.window_combo.findData(1))
    dialog.text_encoder_combo.setCurrentIndex(dialog.text_encoder_combo.findData("cpu"))
    combo = page.placement_combo
    assert combo.isEnabled()
    items = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert list(items) == ["auto", "none", "layers", "kv-cache", "both"]
    # Each mode's memory is the engine's own plan (magi_engine.loading.memory.plan_memory) for this model and size.
    variant = MAGI_VARIANTS["4.5B_distill_quant"]
    plan = plan_memory(variant.dit, width=720, height=720, window=1, cache_chunks=4, device="cuda", free=12 * GIB,
                       fp8=True, keep_fp8=True, text_encoder="cpu")
    for mode in ("none", "layers", "kv-cache", "both"):
        assert f"about {plan.estimates[mode].total_bytes / GIB:.1f} GiB" in items[mode]
    # The KV cache alone would fit, but was never measured: Automatic takes the measured layers-and-KV-cache.
    assert "not measured" in items["kv-cache"] and "not measured" not in items["layers"]
    assert "too large" in items["none"] and "too large" not in items["kv-cache"]
    assert plan.dit_offload == "both" and items["auto"].startswith("Automatic — takes layers and KV cache in CPU memory (about")
    note = page.placement_note.text()
    assert note.startswith("At 720×720, window 1, Automatic plans: T5 text encoder on the CPU (as set).")
    assert "12 GiB are free" in note
    combo.setCurrentIndex(combo.findData("kv-cache"))
    combo.activated.emit(combo.currentIndex())
    assert page.placement_note.text().startswith("KV cache in CPU memory applies at the next load; its memory was "
                                                 "never measured on a GPU, so its estimate is unchecked. At 720×720")
    combo.setCurrentIndex(combo.findData("layers"))
    combo.activated.emit(combo.currentIndex())
    assert dialog.apply()
    assert isolated_settings.dit_offload == "layers" and isolated_settings.runtime_config().dit_offload == "layers"

    again = open_dialog(qtbot, isolated_settings)
    again._on_device_facts(cuda_facts(80))
    assert again.engine_page.placement_combo.currentData() == "layers"
    assert again.engine_page.placement_combo.itemText(0).startswith("Automatic — takes on the GPU")
    again._on_device_facts(cuda_facts(80).__class__(cuda_facts(80).devices[1:], "cpu", 0))  # no CUDA: hidden
    assert again.engine_page.placement_row.isHidden() and again.engine_page.placement_choice() == "layers"
    again.device_combo.setCurrentIndex(again.device_combo.findData("cpu"))
    assert again.apply() and isolated_settings.dit_offload == "layers"  # a hidden choice keeps the stored one


def test_apply_fits_the_load_to_the_project_and_says_when_a_size_change_reloads(qtbot, isolated_settings, tmp_path):
    from magi_engine.loading.memory import MemoryTarget
    from magi_studio.engine_worker import ModelInfo

    project = new_project(ProjectSettings(model="4.5B_distill", width=720, height=720))
    session = DocumentSession(project, ProjectStore.create(tmp_path / "Film"))
    loads = []
    info = ModelInfo(spec="4.5B_distill", name="4.5B_distill", label="MAGI-1 4.5B distilled", device="cuda:0",
                     dtype="bfloat16", width=720, height=720, fps=24, sampling=MAGI_VARIANTS["4.5B_distill"].sampling,
                     distilled=True, memory_target=MemoryTarget(720, 720, None, 1))
    worker = SimpleNamespace(model_info=info, ask_device_facts=lambda: None,
                             load_model=lambda *args, **kwargs: loads.append(kwargs) or 7,
                             event=SimpleNamespace(connect=lambda slot: None),
                             deviceFactsChanged=SimpleNamespace(connect=lambda slot: None))
    isolated_settings.model = "4.5B_distill"
    dialog = open_dialog(qtbot, isolated_settings, worker=worker, session=session)
    assert dialog.memory_target() == MemoryTarget(720, 720, None, 1)
    click(qtbot, dialog.size_default_check)
    dialog.width_spin.setValue(1280)
    assert dialog.apply() and not loads  # the same model: no load now...
    assert project.settings.width == 1280
    assert dialog.load_label.text() == ("MAGI-1 4.5B distilled was fitted to 720×720, the model's window, 1 chunk: it "
                                        "loads again for 1280×720, the model's window, 1 chunk at the next Generate.")
    dialog.text_encoder_combo.setCurrentIndex(dialog.text_encoder_combo.findData("cpu"))
    assert dialog.apply()  # a runtime change reloads now, fitted to the project
    assert loads[-1]["target"] == MemoryTarget(1280, 720, None, 1)
