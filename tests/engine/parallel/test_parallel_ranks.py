"""Guidance- and sequence-parallel DiT forwards and sampler runs on 2 and 3 gloo ranks equal one process.

Both MAGI-1 families' tiny configs (4.5B: GELU, 3 query heads per kv head; 24B: SwiGLU, 6 per kv
head, so with 2 or 3 ranks its single kv head is replicated), base (three guidance passes) and
distilled (the near-clean copy), float32: relative error at most 1e-5 on every chunk of a
3-chunk run (window 4, a prompt per chunk) from an image and as a continuation of 2 clean chunks
(regenerate from chunk 2), and on a forward over cached keys with mixed block-causal spans.
"""

from __future__ import annotations

import pytest

from tests.engine.parallel.ranks_util import run_on_ranks
from tests.engine.parallel.scenarios import match_single_device

TOLERANCE = 1e-5


def _check(reports: list[dict], expected_plans: int) -> None:
    for report in reports:
        errors = {k: v for k, v in report.items() if not k.endswith("-chunks")}
        assert all(v <= TOLERANCE for v in errors.values()), errors
        assert all(v == 6 for k, v in report.items() if k.endswith("-chunks")), report
    assert len([k for k in reports[0] if k.endswith("-sampler")]) == expected_plans


@pytest.mark.slow
def test_two_ranks_guidance_and_sequence_parallel_match_one_process(tmp_path):
    reports = run_on_ranks(match_single_device, 2, tmp_path, [(2, 1), (1, 2)])
    _check(reports, expected_plans=8)


@pytest.mark.slow
def test_three_ranks_match_one_process(tmp_path):
    # Three guidance groups (base models' three passes) and a 3-way sequence split (kv heads repeated).
    reports = run_on_ranks(match_single_device, 3, tmp_path, [(3, 1), (1, 3)])
    _check(reports, expected_plans=6)
