"""export(cfg): a trained model as a folder that loads without pickle: `python src/export.py ckpt=PATH out=DIR`.

model=diffusers_unet becomes a diffusers DDPMPipeline folder (model_index.json, unet/, scheduler/) that
DDPMPipeline.from_pretrained and DDIMPipeline.from_pretrained load; every model also gets difflab.json, so that
ckpt=DIR and DiffusionModule.from_pretrained(DIR) rebuild the module (difflab/pretrained.py). The weights are the
checkpoint's EMA weights, as sampling uses them.

How diffusers' schedulers then match difflab's samplers (tests/test_export.py checks each):
  schedule   linear -> beta_schedule=linear with difflab's beta_start, beta_end, T; cosine (s = 0.008, betas clipped
             at 0.999) -> squaredcos_cap_v2, which is that formula; any other -> its betas as trained_betas.
  objective  epsilon -> prediction_type=epsilon, v -> v_prediction; score has no diffusers prediction type: refused.
  clip_x0    -> clip_sample. difflab re-derives eps from the clipped x0, which DDPMScheduler does and DDIMScheduler
             does with DDIMPipeline(..., use_clipped_model_output=True).
  grid       timestep_spacing=trailing: it starts at T-1 as difflab's grids do; the last step goes to abar = 1
             (DDIM's set_alpha_to_one, its default) and returns x0_hat, as difflab's last step does. At
             num_inference_steps = T the grid is difflab's; at n < T diffusers walks T-1, T-1-T/n, ..., T/n-1
             where difflab's sampler.steps=n walks round(linspace(T-1, 0, n)).
  variance   DDPM's posterior variance -> variance_type=fixed_small, sampler.variance=beta -> fixed_large.

schedule=rectified_flow with objective=flow becomes the same DDPMPipeline folder holding a
FlowMatchEulerDiscreteScheduler (num_train_timesteps 1000, shift 1): the network's output is the velocity that
scheduler steps along, at timestep 1000 t, rectified flow's c_noise. DDPMPipeline's loop (noise, then one
`scheduler.step` per timestep) is then Euler's method on the probability-flow ODE, difflab's DDIM on rectified flow
without x0 clipping, on diffusers' grid, sigma from 1 to 1/1000 evenly and then 0.
EDM's preconditioning and its c_noise = 250 ln sigma have no diffusers counterpart (EDMEulerScheduler's c_noise is
ln(sigma) / 4): refused, as are x0, score and the other objectives on rectified flow.
"""

from pathlib import Path

import torch
from omegaconf import DictConfig

from difflab.build import module_from_checkpoint
from difflab.diffusion.objectives import Epsilon, Flow, V
from difflab.diffusion.processes import RectifiedFlow
from difflab.diffusion.schedules import CosineSchedule, LinearSchedule, betas_from_alphas_cumprod
from difflab.errors import ConfigError
from difflab.nets.diffusers_unet import DiffusersUNet, diffusers
from difflab.pretrained import CONFIG, WEIGHTS, atomic_folder, check_target, write_config, write_weights

PREDICTION_TYPES = {Epsilon: "epsilon", V: "v_prediction"}


def beta_settings(schedule) -> dict:
    if isinstance(schedule, LinearSchedule):
        return {"beta_schedule": "linear", "beta_start": schedule.beta_start, "beta_end": schedule.beta_end}
    if isinstance(schedule, CosineSchedule) and (schedule.s, schedule.max_beta) == (0.008, 0.999):
        return {"beta_schedule": "squaredcos_cap_v2"}  # diffusers' betas_for_alpha_bar fixes s and the clip
    return {"trained_betas": betas_from_alphas_cumprod(schedule.alphas_cumprod).tolist()}


def check_unconditional(module) -> None:
    if module.num_classes is not None:
        raise ConfigError("a class-conditional model (model.num_classes set) cannot be exported to diffusers' "
                          "DDPMPipeline / DDIMPipeline, which are unconditional; allowed: model.num_classes=null")


def scheduler_config(module) -> dict:
    """DDPMScheduler's arguments for the module's schedule, objective and sampler (see the module docstring)."""
    if module.schedule.timesteps is None:
        raise ConfigError(f"schedule={module.schedule.name} is a continuous-time process that diffusers' schedulers "
                          "cannot express; allowed: schedule=linear, cosine or rectified_flow (with objective=flow); "
                          "difflab's own folder format, written for model=unet or dit, holds every process")
    prediction_type = PREDICTION_TYPES.get(type(module.objective))
    if prediction_type is None:
        raise ConfigError(f"objective={module.objective.name} cannot be exported to diffusers, whose schedulers take "
                          "no such prediction type; allowed: objective=epsilon or objective=v")
    check_unconditional(module)
    return {
        "num_train_timesteps": module.timesteps, **beta_settings(module.schedule), "prediction_type": prediction_type,
        "clip_sample": getattr(module.sampler, "clip_x0", True), "timestep_spacing": "trailing", "steps_offset": 0,
        "variance_type": "fixed_large" if getattr(module.sampler, "variance", None) == "beta" else "fixed_small",
    }


def flow_scheduler_config(module) -> dict:
    """FlowMatchEulerDiscreteScheduler's arguments for a rectified-flow module (see the module docstring)."""
    if not isinstance(module.objective, Flow):
        raise ConfigError(f"objective={module.objective.name} on schedule=rectified_flow cannot be exported to "
                          "diffusers, whose FlowMatchEulerDiscreteScheduler takes the velocity; allowed: objective=flow")
    check_unconditional(module)
    return {"num_train_timesteps": round(float(module.schedule.c_noise(torch.tensor(1.0)))), "shift": 1.0}


def diffusers_scheduler(module):
    """The diffusers scheduler that samples what the module does: DDPMScheduler, or FlowMatchEulerDiscreteScheduler
    for rectified flow; a one-line ConfigError for what neither expresses."""
    d = diffusers()
    if isinstance(module.schedule, RectifiedFlow):
        return d.FlowMatchEulerDiscreteScheduler(**flow_scheduler_config(module))
    return d.DDPMScheduler(**scheduler_config(module))


def write_pipeline(module, folder, scheduler) -> None:
    unet = module.net.unet.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors
    diffusers().DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder, safe_serialization=True)


def export(cfg: DictConfig) -> Path:
    """Write the checkpoint cfg.ckpt as the folder cfg.out (atomically; a non-empty one only with overwrite=true)."""
    check_target(cfg.out, overwrite=cfg.overwrite, key="out")  # before the seconds that loading takes
    module = module_from_checkpoint(cfg.ckpt, key="ckpt", precision="32", device="cpu")
    to_diffusers = isinstance(module.net, DiffusersUNet)
    scheduler = diffusers_scheduler(module) if to_diffusers else None  # refuse before anything is written
    with atomic_folder(cfg.out, overwrite=cfg.overwrite, key="out") as folder:
        write_config(module, folder)
        if to_diffusers:
            write_pipeline(module, folder, scheduler)
        else:
            write_weights(module, folder)
    what = f"{CONFIG} + {WEIGHTS}"
    if to_diffusers:
        flow = isinstance(module.schedule, RectifiedFlow)
        what = f"a diffusers DDPMPipeline ({'with FlowMatchEulerDiscreteScheduler' if flow else 'DDIMPipeline loads it too'})"
    print(f"wrote {what} to {cfg.out}")
    return Path(cfg.out)
