"""MAGI-1's noise schedule, guidance bins and attention spans, as small pure functions.

Flow matching with t = 0 pure noise and t = 1 clean. The step grid u_k = k/S is squared and warped
with shift s = 3 (t = u²/s / (1 + (1/s - 1)·u²), the reverse-time SD3 shift), which puts the stage
boundaries u = 1/4, 1/2, 3/4 exactly at t = 0.0217, 0.1, 0.3 — the guidance bin edges. The 12-step
"shortcut" grid takes one 1/8 and two 1/16 steps per quarter. All arithmetic is float32, in the
reference's order, so values agree bit for bit (checked against shared/conformance/schedule.json).
"""

from __future__ import annotations

import torch

from magi_engine.config import GuidanceConfig


def step_grid(num_steps: int, shortcut_mode: str = "8,16,16") -> torch.Tensor:
    """The un-warped grid u_0..u_S in [0, 1], float32."""
    if num_steps != 12:
        return torch.linspace(0, 1, num_steps + 1)
    sixteenths = torch.linspace(0, 1, 5) / 4  # 0, 1/16, 2/16, 3/16, 4/16
    within_quarter = sixteenths[:3] if shortcut_mode == "16,16,8" else torch.cat([sixteenths[:1], sixteenths[2:4]])
    quarters = torch.linspace(0, 1, 5)
    return torch.cat([within_quarter + q for q in quarters])[: num_steps + 1]


def warp_time(u: torch.Tensor, shift: float = 3.0) -> torch.Tensor:
    """Grid position u in [0, 1] -> noise level t: squared, then the reverse-time shift (more steps near noise)."""
    u_squared = u**2
    inverse_shift = 1.0 / shift
    return inverse_shift * u_squared / (1 + (inverse_shift - 1) * u_squared)


def flow_schedule(num_steps: int, shift: float = 3.0, shortcut_mode: str = "8,16,16") -> torch.Tensor:
    """t_0..t_S (float32): t_0 = 0 (noise), t_S ≈ 1 (clean)."""
    return warp_time(step_grid(num_steps, shortcut_mode), shift)


def shortcut_step_sizes(num_steps: int, shortcut_mode: str = "8,16,16") -> list[float]:
    """The step-size input of distilled models for each step k: 1 / (2·Δu_k).

    Uniform grids give S/2; the 12-step grid alternates 4 (a 1/8 step) and 8 (a 1/16 step).
    """
    if num_steps != 12:
        return [num_steps / 4 * 2.0] * num_steps
    pattern = (1, 1, 2) if shortcut_mode == "16,16,8" else (2, 1, 1)
    return [4 / pattern[k % 3] * 2.0 for k in range(num_steps)]


def guidance_scales(t: float, guidance: GuidanceConfig) -> tuple[float, float]:
    """(history scale, text scale) for a chunk at noise level t.

    The bin is found with edges shifted down by 1e-7 in float32, so a t equal to an edge falls into
    the upper bin — t = 0.3 (float32 0.30000001) already uses the last-quarter scales.
    """
    edges = torch.tensor(guidance.t_edges, dtype=torch.float32) - 1e-7
    index = int(torch.searchsorted(edges, torch.tensor(t, dtype=torch.float32))) - 1
    index = min(max(index, 0), len(edges) - 1)
    return guidance.history_scales[index], guidance.text_scales[index]


def attention_span(step: int, num_steps: int, spans: tuple[int, ...]) -> int:
    """Chunks (itself included) a chunk attends to while at schedule index `step` (one span per quarter)."""
    return spans[step // (num_steps // len(spans))]
