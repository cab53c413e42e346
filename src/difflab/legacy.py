"""Configs saved by older versions of difflab, read by this one.

A checkpoint or an exported folder keeps the run's whole config, `_target_` paths and argument names included, and
the model is rebuilt from it. When a class moves or an argument is renamed, the old name is added here, so that
every file difflab ever wrote still loads; nothing else reads the old names.
"""

from collections.abc import Mapping

# old `_target_` -> new `_target_`
MOVED: dict[str, str] = {
    "difflab.sampling.samplers.DDPM": "difflab.sampling.ancestral.DDPM",
    "difflab.sampling.samplers.DDIM": "difflab.sampling.ancestral.DDIM",
    "difflab.sampling.solvers.DPMSolverPP": "difflab.sampling.dpm_solver.DPMSolverPP",
    "difflab.sampling.solvers.DPMSolverPP2M": "difflab.sampling.dpm_solver.DPMSolverPP",
    "difflab.sampling.solvers.Heun": "difflab.sampling.heun.Heun",
}

# `_target_` (new path) -> {old argument name: new argument name}
RENAMED: dict[str, dict[str, str]] = {"difflab.nets.dit.DiT": {"input_size": "image_size"}}


def upgrade(config):
    """A plain config (dicts, lists, values) with every moved target and renamed argument in today's names."""
    if isinstance(config, Mapping):
        out = {k: upgrade(v) for k, v in config.items()}
        target = MOVED.get(out.get("_target_"), out.get("_target_"))
        if target is not None:
            out["_target_"] = target
            renames = RENAMED.get(target, {})
            out = {renames.get(k, k): v for k, v in out.items()}
        return out
    if isinstance(config, list):
        return [upgrade(v) for v in config]
    return config
