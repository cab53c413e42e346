"""Generation: images drawn in batches from a network, with seeded per-sample noise, labels and guidance."""

import torch

from difflab.compile import compile_mode
from difflab.diffusion.guidance import make_denoiser
from difflab.errors import ConfigError
from difflab.precision import weight_cache
from difflab.sampling.noise import make_noise


def check_num_samples(num_samples, minimum: int = 1, why: str | None = None) -> None:
    """Raise a one-line ConfigError unless num_samples is an integer >= minimum (`why` the minimum, if said)."""
    if not (isinstance(num_samples, int) and num_samples >= minimum):
        raise ConfigError(f"num_samples={num_samples} is invalid; allowed: an integer >= {minimum}"
                          + (f" ({why})" if why else ""))


def check_temperature(temperature) -> None:
    """Raise a one-line ConfigError unless the temperature is a number > 0 (every entry point calls this before
    its work, generate for its other callers)."""
    if isinstance(temperature, bool) or not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"temperature={temperature} is invalid; allowed: a number > 0 (1 = the model's own)")


def check_labels(y: torch.Tensor | None, num_samples: int, guidance_scale: float | None,
                 num_classes: int | None) -> None:
    """Raise a one-line ConfigError unless labels y and the guidance scale suit a model of `num_classes` classes
    (None: unconditional)."""
    if guidance_scale is not None:
        if num_classes is None:
            raise ConfigError(f"guidance.scale={guidance_scale} needs a class-conditional model "
                              "(model.num_classes set); this checkpoint is unconditional")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) \
                or not guidance_scale >= 0:
            raise ConfigError(f"guidance.scale={guidance_scale} is invalid; allowed: null (no guidance) or a "
                              "number >= 0 (0 = unconditional, 1 = conditional, > 1 = stronger guidance)")
        if y is None:
            raise ConfigError(f"guidance.scale={guidance_scale} needs class labels to guide towards; allowed: "
                              "labels y (guidance.classes in the sample command)")
    if y is None:
        return
    if num_classes is None:
        raise ConfigError("class labels were given but this checkpoint is unconditional (model.num_classes "
                          "is null); allowed: no labels")
    if y.shape != (num_samples,) or y.dtype.is_floating_point or y.dtype.is_complex:
        raise ConfigError(f"labels y of shape {tuple(y.shape)} and dtype {y.dtype} are invalid; allowed: "
                          f"integers of shape ({num_samples},), one per sample")
    bad = y[(y < 0) | (y > num_classes)]
    if len(bad):
        raise ConfigError(f"class label {int(bad[0])} is out of range; allowed: 0..{num_classes - 1} "
                          f"(model.num_classes={num_classes}), or {num_classes} for no label")


@torch.no_grad()
def generate(
    net,
    schedule,
    objective,
    sampler,
    image_shape,
    num_samples: int,
    *,
    temperature: float = 1.0,
    seed: int | None = None,
    y: torch.Tensor | None = None,
    batch_size: int = 256,
    start_index: int = 0,
    callback=None,
    progress: bool = False,
    guidance_scale: float | None = None,
    autocast_dtype: torch.dtype | None = None,
    compile: str | bool | None = None,
) -> torch.Tensor:
    """Draw `num_samples` images [num_samples x C x H x W] (float32, data scale [-1, 1]) with `sampler`.

    `schedule` is what the Denoiser reads: alphas_cumprod [T], or Levels (module.sampling_schedule(sampler)).

    With a seed, sample i depends only on (seed, start_index + i). temperature tau > 0 scales the initial
    noise and every noise injection: tau < 1 gives more typical, less diverse samples. y [num_samples]
    holds class labels (the net's num_classes = no label); guidance_scale w guides towards them (classifier-free
    guidance: 0 = unconditional, 1 = conditional, > 1 stronger; each step then evaluates the net on 2 x batch).
    The net runs in eval mode, on the device of its parameters, and is put back in its mode afterwards.

    `compile` (a mode, difflab.compile) runs the net through torch.compile for fixed shapes: every batch is then
    computed `batch_size` wide, the last one padded with further samples (indices past the end, dropped before they
    are returned), so that one compiled graph serves them all; callers pass batch_size <= their total.
    """
    mode = compile_mode(compile, "compile")
    check_temperature(temperature)
    check_num_samples(num_samples)
    y = None if y is None else torch.as_tensor(y)
    check_labels(y, num_samples, guidance_scale, getattr(net, "num_classes", None))
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    run = net if mode is None else torch.compile(net, mode=mode, dynamic=False)
    chunks = []
    try:
        with weight_cache(device, autocast_dtype):  # each weight cast once, not at every step
            for lo in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - lo)
                width = n if mode is None else batch_size
                labels = None if y is None else y[lo : lo + n].to(device)
                if labels is not None and width > n:  # the padding's labels: the last one repeated
                    labels = torch.cat([labels, labels[-1:].expand(width - n)])
                denoiser = make_denoiser(run, schedule, objective, labels, guidance_scale, autocast_dtype)
                noise = make_noise(width, seed, start_index + lo, device)
                chunks.append(sampler(denoiser, noise, image_shape, temperature, callback, progress)[:n].float())
    finally:
        net.train(was_training)
    return torch.cat(chunks)
