"""The t schedule, guidance bins, step sizes and window plan against MAGI-1 (shared/conformance/schedule.json)."""

from __future__ import annotations

import json

import pytest
import torch

from magi_engine.config import GuidanceConfig
from magi_engine.sampler.schedule import attention_span, flow_schedule, guidance_scales, shortcut_step_sizes
from magi_engine.sampler.window import total_steps, window_steps
from tests.conformance import conformance_path


@pytest.fixture(scope="module")
def reference():
    return json.loads(conformance_path("schedule.json").read_text())


def schedule_key(name: str) -> tuple[int, str]:
    steps = int(name[1:].split("_")[0])
    return steps, name.split("_")[1] if "_" in name else "8,16,16"


def test_schedules_match_bit_for_bit(reference):
    for name, expected in reference["schedules"].items():
        steps, mode = schedule_key(name)
        t = flow_schedule(steps, 3.0, mode)
        assert [float.hex(v) for v in t.tolist()] == [float.hex(float.fromhex(h)) for h in expected["t_float32_hex"]], name


def test_guidance_scales_and_near_clean_flags_per_step(reference):
    guidance = GuidanceConfig()
    for name, expected in reference["schedules"].items():
        steps, mode = schedule_key(name)
        t = flow_schedule(steps, 3.0, mode)
        scales = [guidance_scales(float(t[k]), guidance) for k in range(steps)]
        assert [h for h, _ in scales] == expected["cfg_prev_chunk_scale"], name
        assert [s for _, s in scales] == expected["cfg_text_scale"], name
        assert [float(t[k]) > 0.3 for k in range(steps)] == expected["distill_nearly_clean_flag(t_k>0.3)"], name


def test_guidance_bin_edges(reference):
    for probe in reference["cfg_bin_probe"]:
        t = float(torch.tensor(probe["t"], dtype=torch.float32))
        assert guidance_scales(t, GuidanceConfig()) == (probe["prev"], probe["text"]), probe


def test_distilled_step_sizes_follow_the_reference_intervals(reference):
    for name, expected in reference["schedules"].items():
        steps, mode = schedule_key(name)
        base = 4 if steps == 12 else steps / 4
        assert shortcut_step_sizes(steps, mode) == [base / i * 2 for i in expected["distill_interval"]], name


def test_window_plan_matches_the_reference_sequences(reference):
    for name, expected in reference["generate_sequences"].items():
        chunks, window, offset = (int(part.removeprefix(p)) for part, p in
                                  zip(name.split("_"), ("chunks", "window", "offset")))
        stages = {}
        for step in window_steps(offset, chunks, 4 * window, window):
            stages.setdefault(step.stage, step)
        starts = [s.chunks[0] for s in stages.values()]
        ends = [s.chunks[-1] + 1 for s in stages.values()]
        ages = [sorted(step.stage - c for c in step.chunks) for step in stages.values()]
        assert starts == expected["clip_start"] and ends == expected["clip_end"], name
        assert [a[0] for a in ages] == expected["t_start"] and [a[-1] + 1 for a in ages] == expected["t_end"], name


def test_schedule_shape_without_reference_files():
    t = flow_schedule(8)
    assert t[0] == 0 and abs(float(t[-1]) - 1) < 1e-6 and torch.all(t[1:] > t[:-1])
    # The stage boundaries of a 4-stage window land on the guidance bin edges.
    assert [round(float(t[k]), 4) for k in (2, 4, 6)] == [0.0217, 0.1, 0.3]
    assert total_steps(num_chunks=4, num_steps=64, window=4) == 112  # 7 stages x 16, as in the brief
    assert [attention_span(k, 8, (5, 4, 3, 2)) for k in range(8)] == [5, 5, 4, 4, 3, 3, 2, 2]
