"""Hub downloads without the network: a hand-made cache, offline mode, and a faked Hub listing.

Every test runs with sockets blocked; `network_attempts` records what would have gone out.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from huggingface_hub import _snapshot_download, constants
from huggingface_hub.hf_api import HfApi, RepoFile
from huggingface_hub.utils import filter_repo_objects
from safetensors.torch import save_file

from magi_engine.errors import ConfigError, DownloadError
from magi_engine.loading.hub import (
    IGNORE_PATTERNS,
    VARIANTS,
    DownloadCancelled,
    allow_patterns_for,
    download_variant,
    weight_dir,
)
from magi_engine.loading.safetensors_io import CheckpointReader

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list:
    attempts: list = []

    def refuse_connect(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access blocked in tests ({address})")

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(f"name lookup blocked in tests ({host})")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return attempts


def _offline(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    if on:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", on)


def _repo_files(variant: str) -> dict[str, dict[str, torch.Tensor] | str]:
    """Relative path → tensors (a safetensors file) or text."""
    wdir = weight_dir(variant)
    return {
        f"{wdir}/model-00001-of-00002.safetensors": {"a": torch.ones(4096)},  # 16 KiB: many chunks
        f"{wdir}/model-00002-of-00002.safetensors": {"b": torch.zeros(3)},
        f"{wdir}/model.safetensors.index.json":
            '{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}',
        "ckpt/vae/config.json": '{"_class_name": "ViTVAE"}',
        "ckpt/vae/diffusion_pytorch_model.safetensors": {"encoder.cls_token": torch.zeros(1, 1, 4)},
        "ckpt/t5/t5-v1_1-xxl/model.safetensors": {"shared.weight": torch.zeros(4, 2)},
        "ckpt/t5/t5-v1_1-xxl/tokenizer_config.json": "{}",
        "ckpt/t5/t5-v1_1-xxl/spiece.model": "sentencepiece",
    }


def _write(root: Path, files: dict) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            save_file(content, str(path))
        else:
            path.write_text(content)


def _fake_cache(cache: Path, variant: str) -> Path:
    repo = cache / "models--sand-ai--MAGI-1"
    snapshot = repo / "snapshots" / COMMIT
    _write(snapshot, _repo_files(variant))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


# Patterns ------------------------------------------------------------------------------------------
ALL_FILES = [
    f"ckpt/magi/{v}/{d}/{name}" for v, d in VARIANTS.items()
    for name in ("model.safetensors.index.json", "model-00001-of-00002.safetensors", "pytorch_model.bin")
] + ["ckpt/vae/config.json", "ckpt/vae/diffusion_pytorch_model.safetensors", "ckpt/vae/model.pt",
     "ckpt/t5/t5-v1_1-xxl/config.json", "ckpt/t5/t5-v1_1-xxl/model-00001-of-00002.safetensors",
     "ckpt/t5/t5-v1_1-xxl/pytorch_model-00001-of-00002.bin", "ckpt/t5/t5-v1_1-xxl/spiece.model",
     "ckpt/t5/t5-v1_1-xxl/tokenizer_config.json", "README.md", "example/24B/24B_config.json"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_allow_patterns_select_exactly_the_variant(variant: str) -> None:
    chosen = set(filter_repo_objects(ALL_FILES, allow_patterns=allow_patterns_for(variant),
                                     ignore_patterns=IGNORE_PATTERNS))
    wdir = weight_dir(variant)
    expected = {f"{wdir}/model.safetensors.index.json", f"{wdir}/model-00001-of-00002.safetensors",
                "ckpt/vae/config.json", "ckpt/vae/diffusion_pytorch_model.safetensors",
                "ckpt/t5/t5-v1_1-xxl/config.json", "ckpt/t5/t5-v1_1-xxl/model-00001-of-00002.safetensors",
                "ckpt/t5/t5-v1_1-xxl/spiece.model", "ckpt/t5/t5-v1_1-xxl/tokenizer_config.json"}
    assert chosen == expected
    only_dit = set(filter_repo_objects(ALL_FILES, allow_patterns=allow_patterns_for(variant, False, False)))
    assert only_dit == {f"{wdir}/model.safetensors.index.json", f"{wdir}/model-00001-of-00002.safetensors"}


def test_variant_folders_follow_the_official_convention() -> None:
    assert weight_dir("24B_base") == "ckpt/magi/24B_base/inference_weight"
    assert weight_dir("4.5B_distill") == "ckpt/magi/4.5B_distill/inference_weight.distill"
    assert weight_dir("24B_distill_quant") == "ckpt/magi/24B_distill_quant/inference_weight.fp8.distill"
    with pytest.raises(ConfigError, match="4.5B_base"):
        allow_patterns_for("13B_base")


# Offline --------------------------------------------------------------------------------------------
def test_offline_cached_snapshot_found_without_network(tmp_path: Path, monkeypatch, network_attempts) -> None:
    snapshot = _fake_cache(tmp_path, "4.5B_distill")
    _offline(monkeypatch, True)
    root = download_variant("4.5B_distill", cache_dir=tmp_path)
    assert root == snapshot
    with CheckpointReader(root / weight_dir("4.5B_distill")) as reader:
        assert sorted(reader.keys()) == ["a", "b"]
    assert network_attempts == []


def test_offline_env_set_after_import_and_cache_from_env(tmp_path: Path, monkeypatch, network_attempts) -> None:
    snapshot = _fake_cache(tmp_path, "24B_base")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # huggingface_hub's constant was read at import: still False
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert download_variant("24B_base") == snapshot
    assert network_attempts == []


def test_local_files_only_needs_no_offline_flag(tmp_path: Path, monkeypatch, network_attempts) -> None:
    snapshot = _fake_cache(tmp_path, "4.5B_base")
    _offline(monkeypatch, False)
    assert download_variant("4.5B_base", cache_dir=tmp_path, local_files_only=True) == snapshot
    assert network_attempts == []


def test_offline_and_not_cached(tmp_path: Path, monkeypatch, network_attempts) -> None:
    _offline(monkeypatch, True)
    with pytest.raises(DownloadError, match="not in the Hugging Face cache.*offline mode is on"):
        download_variant("24B_distill", cache_dir=tmp_path)
    assert network_attempts == []


def test_offline_cache_holding_another_variant(tmp_path: Path, monkeypatch, network_attempts) -> None:
    _fake_cache(tmp_path, "4.5B_distill")
    _offline(monkeypatch, True)
    with pytest.raises(DownloadError, match="24B_distill_quant/inference_weight.fp8.distill"):
        download_variant("24B_distill_quant", cache_dir=tmp_path)
    assert network_attempts == []


def test_network_failure_is_a_download_error(tmp_path: Path, monkeypatch, network_attempts) -> None:
    _offline(monkeypatch, False)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1, raising=False)
    with pytest.raises(DownloadError, match="Check the internet connection"):
        download_variant("4.5B_base", cache_dir=tmp_path)
    assert network_attempts, "the hub client should have tried (and been blocked)"


# Online, with the Hub faked -------------------------------------------------------------------------
@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Real snapshot_download over a faked listing; files 'arrive' in 1 KiB chunks through tqdm_class."""
    _offline(monkeypatch, False)
    variant = "4.5B_distill_quant"
    source = tmp_path / "remote"
    _write(source, _repo_files(variant))
    sizes = {p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*") if p.is_file()}
    monkeypatch.setattr(HfApi, "repo_info", lambda self, repo_id, **kw: SimpleNamespace(sha=COMMIT))
    monkeypatch.setattr(HfApi, "list_repo_tree", lambda self, repo_id, **kw: [
        RepoFile(path=path, size=size, oid="0" * 40) for path, size in sizes.items()])
    requested: list[str] = []

    def fake_file_download(repo_id, *, filename, cache_dir, revision, tqdm_class, **kwargs):
        requested.append(filename)
        data = (source / filename).read_bytes()
        bar = tqdm_class(total=len(data), initial=0)  # as http_get does with snapshot's aggregated bar
        target = Path(cache_dir) / "models--sand-ai--MAGI-1" / "snapshots" / revision / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            for start in range(0, len(data), 1024):
                chunk = data[start:start + 1024]
                fh.write(chunk)
                bar.update(len(chunk))
                bar.update_transfer(len(chunk))
        return str(target)

    monkeypatch.setattr(_snapshot_download, "hf_hub_download", fake_file_download)
    cache = tmp_path / "cache"
    return SimpleNamespace(variant=variant, cache=cache, sizes=sizes, requested=requested)


def test_progress_reports_bytes_of_the_needed_files(fake_hub, network_attempts) -> None:
    reports: list[tuple[int, int]] = []
    root = download_variant(fake_hub.variant, cache_dir=fake_hub.cache, progress=lambda d, t: reports.append((d, t)))
    assert root == fake_hub.cache / "models--sand-ai--MAGI-1" / "snapshots" / COMMIT
    assert sorted(fake_hub.requested) == sorted(fake_hub.sizes)  # the fake repo holds exactly the needed files
    total = sum(fake_hub.sizes.values())
    assert reports and max(d for d, _ in reports) == total
    assert reports[-1][1] == total and all(d <= t for d, t in reports)
    assert len(reports) >= total // 1024  # per chunk, not per file
    assert network_attempts == []


def test_cancel_stops_the_download(fake_hub, network_attempts) -> None:
    seen = {"bytes": 0}

    def progress(done: int, total: int) -> None:
        seen["bytes"] = done

    with pytest.raises(DownloadCancelled):
        download_variant(fake_hub.variant, cache_dir=fake_hub.cache, progress=progress,
                         cancel=lambda: seen["bytes"] >= 2048)
    assert seen["bytes"] < sum(fake_hub.sizes.values())
    assert not isinstance(DownloadCancelled("x"), DownloadError)
    assert network_attempts == []


def test_cancelled_before_start(tmp_path: Path, network_attempts) -> None:
    with pytest.raises(DownloadCancelled):
        download_variant("4.5B_base", cache_dir=tmp_path, cancel=lambda: True)
    assert network_attempts == []


def test_snapshot_download_is_called_with_patterns(tmp_path: Path, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: calls.append((repo_id, kw)) or
                        str(_fake_cache(tmp_path, "24B_distill")))
    download_variant("24B_distill", cache_dir=tmp_path, revision="v1", local_files_only=False)
    repo_id, kwargs = calls[0]
    assert repo_id == "sand-ai/MAGI-1" and kwargs["revision"] == "v1"
    assert kwargs["allow_patterns"] == allow_patterns_for("24B_distill")
    assert "*.bin" in kwargs["ignore_patterns"] and "*.pth" in kwargs["ignore_patterns"]
    assert kwargs["local_files_only"] is False and kwargs["tqdm_class"] is not None


def test_folders_agree_with_the_variant_table() -> None:
    from magi_engine.variants import MAGI_VARIANTS  # the model table kept beside the configs

    assert set(MAGI_VARIANTS) == set(VARIANTS)
    assert all(weight_dir(name) == variant.hub_folder for name, variant in MAGI_VARIANTS.items())
