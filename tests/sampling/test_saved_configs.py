"""Configs saved before the samplers moved (their `_target_` in samplers.py / solvers.py) still build the sampler."""

import hydra
import pytest
from omegaconf import OmegaConf

from difflab.legacy import upgrade
from difflab.sampling import DDIM, DDPM, DPMSolverPP, Heun


@pytest.mark.parametrize("saved,cls", [
    ({"_target_": "difflab.sampling.samplers.DDPM", "steps": None, "variance": "beta"}, DDPM),
    ({"_target_": "difflab.sampling.samplers.DDIM", "steps": 10, "eta": 0.5}, DDIM),
    ({"_target_": "difflab.sampling.solvers.DPMSolverPP", "steps": 8, "order": 3, "eta": 1.0}, DPMSolverPP),
    ({"_target_": "difflab.sampling.solvers.DPMSolverPP2M", "steps": 8, "spacing": "karras"}, DPMSolverPP),
    ({"_target_": "difflab.sampling.solvers.Heun", "steps": 6, "churn": 1.0}, Heun),
], ids=lambda v: v["_target_"].rsplit(".", 1)[-1] if isinstance(v, dict) else v.__name__)
def test_an_old_sampler_target_builds_todays_sampler(saved, cls):
    run_config = {"sampler": saved, "seed": 0}
    sampler = hydra.utils.instantiate(OmegaConf.create(upgrade(run_config)).sampler)
    assert type(sampler) is cls
    assert {k: getattr(sampler, k) for k in saved if k != "_target_"} == {k: v for k, v in saved.items()
                                                                          if k != "_target_"}
