"""Export to diffusers: the folder loads in DDPMPipeline and DDIMPipeline offline, its scheduler has difflab's
noise levels, and from the same noise diffusers' DDIM and DDPM draw difflab's images; what diffusers cannot express
is refused in one line, before anything is written."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from difflab.build import module_from_checkpoint
from difflab.diffusion.objectives import X0, Epsilon, Flow, Score
from difflab.diffusion.processes import EDM, RectifiedFlow
from difflab.diffusion.schedules import CosineSchedule, LinearSchedule
from difflab.errors import ConfigError
from difflab.export import beta_settings, diffusers_scheduler
from difflab.sampling import DDIM, DDPM
from difflab.sampling.ancestral import sample_reverse
from difflab.train import train
from tests.conftest import compose_train, run_cli, run_in_process

diffusers = pytest.importorskip("diffusers")

T = 20  # noise levels of the test runs: every step of a full-length DDIM run stays cheap
TINY_UNET = ["model=diffusers_unet", "model.block_out_channels=[16,32]", "model.layers_per_block=1",
             f"schedule.timesteps={T}", "logger=none"]


def trained(out: Path, *overrides, base=TINY_UNET, continuous=False) -> Path:
    """A 3-step run's checkpoint, its EMA weights then moved well off their zero-output start, so that a wrong
    conversion (prediction type, clipping, a step's noise levels) shows in the images."""
    train(compose_train(out, *base, *overrides, tiny_schedule=not continuous))
    path = out / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=True)
    g = torch.Generator().manual_seed(0)
    ckpt["state_dict"] = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, path)
    return path


def export(ckpt, out, *args):
    return run_in_process("export", f"ckpt={ckpt}", f"out={out}", f"hydra.run.dir={Path(out).parent / 'hydra'}", *args)


def fixed(latent):
    return lambda shape, dtype=torch.float32: latent.to(dtype)


@pytest.mark.parametrize("schedule", [LinearSchedule(T), LinearSchedule(1000, 2e-4, 0.03), CosineSchedule(1000),
                                      CosineSchedule(50, s=0.02, max_beta=0.2)], ids=["linear", "linear-1000",
                                                                                      "cosine", "cosine-other"])
def test_exported_schedule_has_difflabs_noise_levels(schedule):
    settings = beta_settings(schedule)
    for scheduler in (diffusers.DDPMScheduler, diffusers.DDIMScheduler):
        got = scheduler(num_train_timesteps=schedule.timesteps, **settings).alphas_cumprod.double()
        torch.testing.assert_close(got, schedule.alphas_cumprod, rtol=1e-4, atol=1e-7)  # diffusers computes in fp32
    # diffusers' cosine is difflab's at s = 0.008, clip 0.999 only; other settings travel as their betas
    named = diffusers.DDPMScheduler(num_train_timesteps=schedule.timesteps, beta_schedule="squaredcos_cap_v2")
    if "trained_betas" in settings:
        assert not torch.allclose(named.alphas_cumprod.double(), schedule.alphas_cumprod, rtol=1e-2)


@pytest.mark.parametrize("schedule, objective", [("linear", "epsilon"), ("cosine", "v"), ("linear", "v"),
                                                 ("cosine", "epsilon")])
def test_diffusers_ddim_draws_difflabs_ddim_images(tmp_path, schedule, objective):
    ckpt = trained(tmp_path / "run", f"schedule={schedule}", f"objective={objective}")
    assert export(ckpt, tmp_path / "pipe").returncode == 0
    module = module_from_checkpoint(ckpt, precision="32")
    pipe = diffusers.DDIMPipeline.from_pretrained(tmp_path / "pipe", local_files_only=True)
    latent = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))  # what the pipeline draws first

    def ddim(steps):
        images = pipe(batch_size=4, generator=torch.Generator().manual_seed(0), num_inference_steps=steps, eta=0.0,
                      use_clipped_model_output=True, output_type="pt").images
        return images * 2 - 1, pipe.scheduler.timesteps  # [0, 1] back to difflab's [-1, 1]

    # All T steps: diffusers' grid is difflab's, so its images are the DDIM sampler's
    theirs, grid = ddim(T)
    assert grid.tolist() == DDIM(steps=T).timesteps(T).tolist()
    ours = DDIM(steps=T)(module.denoiser(), fixed(latent), module.image_shape)
    diff = (theirs - ours).abs().max().item()
    print(f"max |diffusers DDIM - difflab DDIM| ({schedule}, {objective}, {T} steps): {diff:.2e}")
    assert diff <= 1e-3 and ours.std() > 0.1
    # Fewer steps: diffusers' own (trailing) grid, walked by difflab's recursion, gives diffusers' images
    theirs, grid = ddim(5)
    assert grid[0] == T - 1  # trailing spacing: from the noise level difflab's samplers start at
    ours = sample_reverse(module.denoiser(), latent, fixed(latent), grid, eta=0.0, clip_x0=True)
    assert (theirs - ours).abs().max() <= 1e-3


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_diffusers_ddpm_draws_difflabs_ddpm_images(tmp_path, variance):
    """Both draw the initial noise and then one draw per step but the last, in the same order and shapes."""
    ckpt = trained(tmp_path / "run", "sampler=ddpm", f"sampler.variance={variance}")
    assert export(ckpt, tmp_path / "pipe").returncode == 0
    pipe = diffusers.DDPMPipeline.from_pretrained(tmp_path / "pipe", local_files_only=True)
    assert pipe.scheduler.config.variance_type == {"posterior": "fixed_small", "beta": "fixed_large"}[variance]
    theirs = pipe(batch_size=3, generator=torch.Generator().manual_seed(1), num_inference_steps=T,
                  output_type="pt").images * 2 - 1
    g = torch.Generator().manual_seed(1)
    module = module_from_checkpoint(ckpt, precision="32")
    ours = DDPM(variance=variance)(module.denoiser(), lambda shape, dtype=torch.float32:
                                   torch.randn((3, *shape), generator=g, dtype=dtype), module.image_shape)
    assert (theirs - ours).abs().max() <= 1e-3


def test_export_folder_holds_the_ema_unet_and_loads_back(tmp_path):
    ckpt = trained(tmp_path / "run")
    done = export(ckpt, tmp_path / "pipe")
    assert done.returncode == 0 and "DDPMPipeline" in done.stdout, done.stderr
    folder = tmp_path / "pipe"
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".ckpt", ".pt", ".pkl")]  # nothing to unpickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hydra", "pipe", "run"]  # no temporary folder left
    unet = diffusers.UNet2DModel.from_pretrained(folder / "unet", local_files_only=True)
    saved = torch.load(ckpt, weights_only=True)
    for k, v in unet.state_dict().items():  # the EMA average, not the raw weights
        assert torch.equal(v, saved["state_dict"][f"net.unet.{k}"]), k
    assert any(not torch.equal(v, saved["current_model_state"][k]) for k, v in saved["state_dict"].items())
    # ckpt=DIR: difflab samples from the export as from the checkpoint
    x = module_from_checkpoint(folder, precision="32").sample(3, seed=0)
    assert torch.equal(x, module_from_checkpoint(ckpt, precision="32").sample(3, seed=0))


def test_what_diffusers_cannot_express_is_refused(tmp_path):
    ckpt = trained(tmp_path / "run", "objective=score")
    done = export(ckpt, tmp_path / "pipe")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: objective=score cannot be exported to diffusers, whose "
                                                "schedulers take no such prediction type; allowed: objective=epsilon "
                                                "or objective=v"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hydra", "run"]  # refused before writing anything


@pytest.mark.parametrize("module, message", [
    (SimpleNamespace(objective=Score(), num_classes=None, schedule=CosineSchedule()), "objective=score cannot be exported"),
    (SimpleNamespace(objective=Epsilon(), num_classes=10, schedule=CosineSchedule()),
     "a class-conditional model .* cannot be exported"),
    (SimpleNamespace(objective=Epsilon(), num_classes=None, schedule=EDM()),
     "schedule=edm is a continuous-time process that diffusers' schedulers cannot express; allowed: schedule=linear, "
     "cosine or rectified_flow"),
    (SimpleNamespace(objective=X0(), num_classes=None, schedule=RectifiedFlow()),
     "objective=x0 on schedule=rectified_flow cannot be exported .* allowed: objective=flow"),
    (SimpleNamespace(objective=Flow(), num_classes=10, schedule=RectifiedFlow()),
     "a class-conditional model .* cannot be exported"),
])
def test_diffusers_scheduler_refuses(module, message):
    with pytest.raises(ConfigError, match=message):
        diffusers_scheduler(module)


def test_rectified_flow_exports_to_flow_match_euler_which_walks_difflabs_ode(tmp_path):
    """diffusers' FlowMatchEulerDiscreteScheduler stepping the exported UNet is Euler's method on the ODE difflab's
    rectified flow samples: on difflab's own grid it draws difflab's DDIM images (unclipped)."""
    continuous = [o for o in TINY_UNET if not o.startswith("schedule.")]  # no discrete levels to set
    ckpt = trained(tmp_path / "run", "schedule=rectified_flow", base=continuous, continuous=True)
    done = export(ckpt, tmp_path / "pipe")
    assert done.returncode == 0 and "FlowMatchEulerDiscreteScheduler" in done.stdout, done.stderr
    pipe = diffusers.DDPMPipeline.from_pretrained(tmp_path / "pipe", local_files_only=True)
    assert isinstance(pipe.scheduler, diffusers.FlowMatchEulerDiscreteScheduler)
    module = module_from_checkpoint(ckpt, precision="32")
    steps = 6
    sampler = DDIM(steps=steps, clip_x0=False)
    latent = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    ours = sampler(module.denoiser(sampler=sampler), fixed(latent), module.image_shape)
    levels = module.sampling_schedule(sampler)  # the sampler's own grid, one level per step
    times = levels.times[sampler.timesteps(len(levels.times))]
    pipe.scheduler.set_timesteps(sigmas=times.tolist())
    # difflab starts from the variance-preserving state: x_t = latent * sqrt(alpha^2 + sigma^2) at the first time
    x = latent * ((1 - times[0]) ** 2 + times[0] ** 2).sqrt().float()
    with torch.no_grad():
        for t in pipe.scheduler.timesteps:
            x = pipe.scheduler.step(pipe.unet(x, t).sample, t, x).prev_sample
    diff = (x - ours).abs().max().item()
    print(f"max |diffusers flow-match Euler - difflab DDIM| (rectified flow, {steps} steps): {diff:.2e}")
    assert diff <= 1e-4 and ours.std() > 0.1
    # the pipeline as users call it, on diffusers' own grid
    images = pipe(batch_size=4, generator=torch.Generator().manual_seed(0), num_inference_steps=steps,
                  output_type="pt").images
    assert images.shape == (4, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


@pytest.mark.slow
def test_export_command_refuses_a_used_folder_in_one_line_in_its_own_process(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    done = run_cli("export", f"ckpt={tmp_path / 'none.ckpt'}", f"out={tmp_path / 'out'}",
                   f"hydra.run.dir={tmp_path / 'hydra'}")
    assert done.returncode == 2 and done.stderr.strip().startswith(f"error: out={tmp_path / 'out'} exists and is not")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
