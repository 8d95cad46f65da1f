"""benchmarks/multi_gpu.py, the several-GPU measuring script, run on 2 gloo ranks with a tiny model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "multi_gpu.py"


def _load_script():
    # Imported under the name its spawned ranks will import it by (benchmarks/ joins sys.path).
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("multi_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["multi_gpu"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_script_measures_a_split_against_its_one_rank_baseline(tmp_path, capsys):
    script = _load_script()
    out = tmp_path / "rows.json"
    assert script.main(["--backend", "gloo", "--variant", "tiny-distill", "--size", "64x64", "--steps", "8",
                        "--chunks", "3", "--gpus", "1,2", "--splits", "sequence", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["gpus"], r["split"]) for r in rows] == [(1, "none"), (2, "sequence")]
    for row in rows:
        assert "error" not in row, row
        assert row["max_rel_error"] <= 1e-5
        assert row["first_chunk_s"] > 0 and row["total_s"] >= row["first_chunk_s"]
        assert row["steps_run"] == 8 // 4 * (3 + 4 - 1)
    assert rows[0]["bytes_per_step"] == 0
    # Each layer's q, k, v and output of every forward (tiny: 2 layers, 48 of 96 tokens a chunk per rank).
    assert rows[1]["bytes_per_step"] > 2 * 4 * 48 * 32 * 4 and 0 < rows[1]["comm_share"] < 1
    assert "| 2 | sequence | 2-way sequence split |" in capsys.readouterr().out
