"""tests/conformance.py: missing conformance data skips a test locally and fails it in CI."""

from __future__ import annotations

import pytest

from tests.conformance import conformance_path


def test_missing_data_skips_locally_with_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGI_CONFORMANCE_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="conformance data not found: .*absent/vae_tiny"):
        conformance_path("vae_tiny")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        conformance_path("vae_tiny")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_data_fails_in_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("MAGI_CONFORMANCE_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="conformance data not found: .*absent/schedule.json.*fails the run"):
        conformance_path("schedule.json")


def test_a_missing_part_of_present_data_fails_in_ci_too(tmp_path, monkeypatch):
    (tmp_path / "dit_tiny").mkdir()
    monkeypatch.setenv("MAGI_CONFORMANCE_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    assert conformance_path("dit_tiny") == tmp_path / "dit_tiny"
    with pytest.raises(pytest.fail.Exception):
        conformance_path("vae_tiny", "model.safetensors")


def test_default_folder_is_shared_conformance_beside_the_checkout(monkeypatch):
    from tests.conformance import REPO, conformance_root

    monkeypatch.delenv("MAGI_CONFORMANCE_DIR", raising=False)
    assert conformance_root() == REPO.parent / "shared" / "conformance"
