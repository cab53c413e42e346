"""Timestep grids (sampling/grids.py): every spacing gives exactly `steps` distinct points from start down to 0."""

import pytest

from difflab.sampling import Heun, respaced_timesteps
from difflab.sampling.grids import SPACING_NAMES
from tests.sampling.exact import SCHEDULE_IDS, SCHEDULES


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("spacing", SPACING_NAMES)
def test_grids_have_exactly_steps_distinct_points(schedule, spacing):
    sampler = Heun(spacing=spacing)
    for start in (999, 40):
        for steps in (1, 2, 7, 41, 1000):
            ts = Heun(steps=steps, spacing=spacing).timesteps(1000, start, schedule.alphas_cumprod).tolist()
            assert len(ts) == min(steps, start + 1) and ts[0] == start and (steps == 1 or ts[-1] == 0)
            assert all(a > b for a, b in zip(ts, ts[1:]))
    if spacing == "uniform":
        assert sampler.timesteps(1000).tolist() == respaced_timesteps(1000, 18).tolist()
