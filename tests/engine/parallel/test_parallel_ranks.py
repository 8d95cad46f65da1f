"""Guidance-, sequence- and guidance x sequence-parallel DiT forwards and sampler runs equal one process.

One launch of 4 gloo ranks runs every plan on its first ranks: 2 guidance groups and a 2-way sequence
split (ranks 0-1), 3 guidance groups (base models' three passes) and a 3-way sequence split (ranks
0-2, the kv heads repeated), and 2 x 2 (all four). Both MAGI-1 families' tiny configs (4.5B: GELU, 3
query heads per kv head; 24B: SwiGLU, 6 per kv head, so with 2 or 3 ranks its single kv head is
replicated), base (three guidance passes) and distilled (the near-clean copy), float32: relative error
at most 1e-5 on every chunk of a 3-chunk run (window 4, a prompt per chunk) from an image and as a
continuation of 2 clean chunks (regenerate from chunk 2), and on a forward over cached keys with mixed
block-causal spans; every rank of a plan ends with the same latents.
"""

from __future__ import annotations

import pytest

from tests.engine.parallel.ranks_util import run_on_ranks
from tests.engine.parallel.scenarios import match_single_device

TOLERANCE = 1e-5
PLANS = [(2, 1), (1, 2), (3, 1), (1, 3), (2, 2)]


@pytest.mark.slow
def test_every_split_on_two_three_and_four_ranks_matches_one_process(tmp_path):
    reports = run_on_ranks(match_single_device, 4, tmp_path, PLANS)
    samplers = {k: v for k, v in reports[0].items() if k.endswith("-sampler")}
    # Per plan: both families, base and distilled (3 guidance groups: base only).
    assert len(samplers) == 4 + 4 + 2 + 4 + 4, sorted(samplers)
    for rank, report in enumerate(reports):
        errors = {k: v for k, v in report.items() if k.endswith(("-forward", "-sampler"))}
        assert all(v <= TOLERANCE for v in errors.values()), (rank, errors)
        assert all(v == 6 for k, v in report.items() if k.endswith("-chunks")), (rank, report)
        for key, checksum in report.items():
            if key.endswith("-checksum"):
                assert checksum == pytest.approx(reports[0][key], rel=1e-6), (rank, key)
    # Rank r takes part in the plans of at least r + 1 ranks: 3 ranks for g3s1 and g1s3, 4 for g2s2.
    assert sum(k.endswith("-chunks") for k in reports[2]) == 2 + 4 + 4 and sum(
        k.endswith("-chunks") for k in reports[3]) == 4
    assert sum(k.endswith("-forward") for k in reports[1]) == 4 + 4 + 4
