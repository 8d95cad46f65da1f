"""The parallel splits' errors against one process on CPU ranks (gloo), as BENCHMARKS.md's table shows them.

    python benchmarks/parallel_errors.py            # every split in one launch of 4 ranks

Runs the scenarios of tests/engine/parallel/test_parallel_ranks.py (tiny 4.5B- and 24B-family configs,
base and distilled, float32) and prints, for each split, the largest relative error over the ranks of the
DiT forward (sequence splits) and of the sampler's chunk latents.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine.parallel.ranks_util import run_on_ranks  # noqa: E402
from tests.engine.parallel.scenarios import match_single_device  # noqa: E402
from tests.engine.parallel.test_parallel_ranks import PLANS  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        reports = run_on_ranks(match_single_device, 4, Path(folder), PLANS)
    worst: dict[str, float] = {}
    for report in reports:
        for key, value in report.items():
            if key.endswith(("-forward", "-sampler")):
                worst[key] = max(worst.get(key, 0.0), value)
    for key, value in worst.items():
        print(f"{key:32s} {value:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
