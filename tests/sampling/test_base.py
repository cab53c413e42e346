"""The call interface every sampler family shares (sampling/base.py): network evaluations, start and project hooks,
clamping, temperature, the checks of its values, and its configs."""

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from difflab.diffusion import LinearSchedule
from difflab.errors import ConfigError
from difflab.sampling import DPMSolverPP, Heun, make_noise
from difflab.train import train
from tests.conftest import CONF, compose_train
from tests.sampling.exact import (M, S, SHAPE, CountingDenoiser, DPMSolverPPCorrector, exact_denoiser,
                                  exact_module)

SAMPLERS = [DPMSolverPP, DPMSolverPPCorrector, Heun]


@pytest.mark.parametrize("sampler", [DPMSolverPP(steps=10, clip_x0=False), Heun(steps=25, clip_x0=False)],
                         ids=["dpmpp", "heun"])
@pytest.mark.parametrize("tau", [0.5, 1.3])
def test_temperature_scales_the_initial_noise_only(sampler, tau):
    module = exact_module(LinearSchedule(), sampler)
    assert module.sample(64, seed=3, temperature=tau).std().item() == pytest.approx(
        tau * module.sample(64, seed=3).std().item(), rel=0.02)


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_nfe_and_callback_count_network_calls(make):
    for steps in (1, 2, 3, 8, 20):
        sampler, denoiser, seen = make(steps=steps), CountingDenoiser(LinearSchedule()), []
        sampler(denoiser, make_noise(2, 0), (1, 2, 2), callback=lambda i, t, x, x0: seen.append((i, t)))
        assert len(denoiser.calls) == sampler.nfe(1000) == len(seen)
        assert [i for i, _ in seen] == list(range(len(seen))) and [t for t, _ in denoiser.calls] == [t for _, t in seen]


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_start_from_a_given_state(make):
    """SDEdit's use: from an exact x_t at t = 300 the same number of steps reaches the data; a start below the number
    of steps leaves fewer timesteps, hence fewer evaluations."""
    schedule, start = LinearSchedule(), 300
    sampler, denoiser = make(steps=20, clip_x0=False), CountingDenoiser(schedule)
    alpha, sigma = schedule.alphas_cumprod[start].sqrt().item(), (1 - schedule.alphas_cumprod[start]).sqrt().item()
    g = torch.Generator().manual_seed(4)
    x_t = alpha * (M + S * torch.randn(64, *SHAPE, generator=g)) + sigma * torch.randn(64, *SHAPE, generator=g)
    x = sampler(denoiser, None, SHAPE, x=x_t, start=start)
    assert denoiser.calls[0][0] == start and torch.equal(denoiser.calls[0][1], x_t)
    assert len(denoiser.calls) == sampler.nfe(1000)
    assert x.std().item() == pytest.approx(S, rel=0.03) and x.mean().item() == pytest.approx(M, abs=0.01)
    denoiser.calls.clear()
    sampler(denoiser, None, SHAPE, x=x_t, start=5)
    assert sampler.timesteps(1000, 5, schedule.alphas_cumprod).tolist() == [5, 4, 3, 2, 1, 0]
    assert len(denoiser.calls) == make(steps=6).nfe(1000) < sampler.nfe(1000)


@pytest.mark.parametrize("make", [DPMSolverPP, Heun], ids=lambda c: c.__name__)
def test_project_sees_model_scale_states_and_is_honoured(make):
    schedule, fixed = LinearSchedule(), torch.full((8, *SHAPE), 0.3)
    sampler, denoiser, seen = make(steps=10, clip_x0=False), CountingDenoiser(schedule), []

    def project(t, x):
        seen.append((t, x.std().item()))
        return fixed if t >= 0 else x + 1

    out = sampler(denoiser, make_noise(8, 5), SHAPE, project=project)
    ts = sampler.timesteps(1000, alphas_cumprod=schedule.alphas_cumprod).tolist()
    assert [t for t, _ in seen] == ts[1:] + [-1]
    assert [t for t, x in denoiser.calls if torch.equal(x, fixed)] == ts[1:]  # every step went on from `fixed`
    torch.testing.assert_close(out, denoiser.inner(fixed, 0)[0] + 1)
    # with an identity hook the state keeps the marginal std of x_t, sqrt(abar s^2 + 1 - abar), not x_t / alpha's
    seen.clear()
    make(steps=30, clip_x0=False)(denoiser, make_noise(64, 6), SHAPE,
                                  project=lambda t, x: (seen.append((t, x.std().item())), x)[1])
    abar = schedule.alphas_cumprod
    for t, std in seen[:-1]:
        assert std == pytest.approx((abar[t] * S**2 + 1 - abar[t]).sqrt().item(), rel=0.1)


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_clip_x0_keeps_predictions_in_the_data_range(make):
    denoiser, x0s = exact_denoiser(LinearSchedule(), mean=0.0, std=1.0), []
    make(steps=5)(denoiser, make_noise(8, 7), SHAPE, callback=lambda i, t, x, x0: x0s.append(x0))
    assert all(x0.abs().max() <= 1 for x0 in x0s)
    out = make(steps=5, clip_x0=False)(denoiser, make_noise(8, 7), SHAPE)
    assert out.abs().max() > 1  # N(0, 1) data leave [-1, 1]: the option does change the result


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs,key", [({"steps": 0}, "sampler.steps=0"), ({"steps": 2.5}, "sampler.steps=2.5"),
                                        ({"steps": True}, "sampler.steps=True"),
                                        ({"spacing": "cosine"}, "sampler.spacing='cosine'")])
def test_bad_values_raise_one_line_config_errors(make, kwargs, key):
    with pytest.raises(ConfigError, match="allowed") as err:
        make(**kwargs)
    assert key in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("make", SAMPLERS, ids=lambda c: c.__name__)
def test_steps_and_start_beyond_the_schedule_are_refused(make):
    for call in (lambda: make(steps=20).check(10), lambda: make(steps=5).timesteps(10, start=10)):
        with pytest.raises(ConfigError, match="allowed") as err:
            call()
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad,message", [({"eta": 11}, r"sampler.eta=11 is invalid; allowed: 0 <= eta <= 10"),
                                         ({"eta": -0.5}, r"sampler.eta=-0.5 is invalid"),
                                         ({"order": 4}, r"sampler.order=4 is invalid; allowed: 1, 2 or 3"),
                                         ({"corrector": "yes"}, r"sampler.corrector='yes' is invalid; allowed: true"),
                                         ({"eta_sigma_min": -1}, r"sampler.eta_sigma_min=-1 is invalid; allowed: a "),
                                         ({"churn": -1}, r"sampler.churn=-1 is invalid; allowed: a number >= 0"),
                                         ({"churn_sigma_min": 2.0, "churn_sigma_max": 1.0},
                                          r"allowed: 0 <= churn_sigma_min <= churn_sigma_max")])
def test_bad_solver_options_are_refused(bad, message):
    with pytest.raises(ConfigError, match=message):
        (Heun if "churn" in next(iter(bad)) else DPMSolverPP)(**bad)


@pytest.mark.parametrize("name,cls", [("dpmpp_2m", DPMSolverPP), ("dpmpp_2m_sde", DPMSolverPP),
                                      ("dpmpp_3m_sde", DPMSolverPP), ("dpmpp_2m_sde_pc", DPMSolverPP), ("heun", Heun)])
def test_sampler_configs_instantiate(name, cls):
    sampler = hydra.utils.instantiate(OmegaConf.load(CONF / "sampler" / f"{name}.yaml"))
    assert type(sampler) is cls and sampler.clip_x0 and sampler.spacing == "logsnr"


@pytest.mark.parametrize("name", ["dpmpp_2m", "heun"])
def test_train_and_sample_with_the_solver(tmp_path, name):
    train(compose_train(tmp_path, f"sampler={name}", "sampler.steps=4", "final_samples=4", "logger=none",
                        "callbacks.trajectory.every_n_steps=2"))
    assert (tmp_path / "samples.png").is_file()
    assert any((tmp_path / "trajectories").glob("*.png"))  # the callback saw every evaluation (nfe frames)
