"""Anomaly detection with a model trained on normal images only: images the model reconstructs badly, or finds
unlikely, are anomalous.

- reconstruction (AnoDDPM, Wyatt et al. 2022): noise the image part-way (timestep start), run the reverse process
  back, and score the squared error; the error per pixel is the score map.
- bits/dim: the variational bound of the likelihood (difflab.diffusion.likelihood), an unbiased estimate from a
  few timesteps per image.
With labels, AUROC (torchmetrics) of each score for "label not in the normal classes"."""

from dataclasses import dataclass
from pathlib import Path

import torch

from difflab.apps.result import Observation, Result
from difflab.diffusion.forward import diffuse
from difflab.diffusion.likelihood import bits_per_dim, to_8bit_grid
from difflab.diffusion.schedules import alpha_sigma_at
from difflab.errors import ConfigError
from difflab.sampling.ancestral import DDIM
from difflab.sampling.noise import make_noise


@dataclass(frozen=True)
class Anomaly:
    """task=anomaly. noise_level: the fraction of the T steps the image is noised for reconstruction; steps: DDIM
    steps back; repeats: reconstructions averaged per image; bpd_timesteps: terms per image of the bits/dim
    estimate (0 = skip that score); normal_classes: null = the classes the checkpoint was trained on."""

    noise_level: float = 0.7
    steps: int = 10
    repeats: int = 1
    bpd_timesteps: int = 10
    normal_classes: list | None = None

    def __post_init__(self):
        if not 0 < self.noise_level <= 1:
            raise ConfigError(f"task.noise_level={self.noise_level} is invalid; allowed: 0 < noise_level <= 1")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConfigError(f"task.steps={self.steps} is invalid; allowed: an integer >= 1")
        if not (isinstance(self.repeats, int) and self.repeats >= 1):
            raise ConfigError(f"task.repeats={self.repeats} is invalid; allowed: an integer >= 1")
        if not (isinstance(self.bpd_timesteps, int) and self.bpd_timesteps >= 0):
            raise ConfigError(f"task.bpd_timesteps={self.bpd_timesteps} is invalid; allowed: an integer >= 0")

    def start(self, T: int) -> int:
        return max(0, min(T - 1, round(self.noise_level * (T - 1))))

    def normal(self, module) -> list[int] | None:
        if self.normal_classes is not None:
            return list(self.normal_classes)
        classes = trained_data(module).get("classes")
        return None if classes is None else list(classes)

    def check(self, module, obs: Observation) -> None:
        DDIM(steps=self.steps).check(module.timesteps)
        num_classes = trained_data(module).get("num_classes")
        for c in self.normal_classes or []:
            if not (isinstance(c, int) and 0 <= c < (num_classes or c + 1)):
                raise ConfigError(f"task.normal_classes={list(self.normal_classes)} is invalid; allowed: labels "
                                  f"from 0 to {num_classes - 1}")

    def __call__(self, module, obs: Observation, temperature: float = 1.0, progress: bool = False) -> Result:
        x = obs.x if obs.reference is None else obs.reference
        T, start = module.timesteps, self.start(module.timesteps)
        abar = module.alphas_cumprod.double().cpu()
        sampler = DDIM(steps=self.steps, clip_x0=module.sampler.clip_x0)
        noise = make_noise(len(x), obs.seed, obs.start_index, x.device)
        errors, recon = 0, None
        for _ in range(self.repeats):
            x_t = diffuse(x, temperature * noise(x.shape[1:]), *alpha_sigma_at(abar, start))
            recon = sampler(module.denoiser(), noise, x.shape[1:], temperature, x=x_t, start=start).clamp(-1, 1)
            errors = errors + (recon - x).pow(2).mean(1, keepdim=True) / self.repeats
        score_map = errors / errors.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1, 1) * 2 - 1
        result = Result({"input": x, "reconstruction": recon, "score_map": score_map},
                        scores={"score_reconstruction": errors.flatten(1).mean(1)},
                        metrics={"start_timestep": start},
                        panel_sort="score_reconstruction")  # the panel shows the most anomalous first
        if self.bpd_timesteps:
            g = torch.Generator(device=module.device).manual_seed(obs.seed + obs.start_index)
            result.scores["score_bits_per_dim"] = bits_per_dim(
                module.denoiser(), to_8bit_grid(x).to(module.device), g, timesteps=self.bpd_timesteps).to(x.device)
        return result

    def summarize(self, module, result: Result, labels: torch.Tensor | None, out: Path) -> dict[str, float]:
        """AUROC of every score for 'label not in the normal classes', and a figure of ROC curves and histograms."""
        normal = self.normal(module)
        if labels is None or normal is None:
            return {}
        from torchmetrics.functional.classification import binary_auroc

        anomalous = ~torch.isin(labels.cpu(), torch.tensor(normal))
        if anomalous.all() or not anomalous.any():
            return {"note_auroc": "needs both normal and anomalous images"}
        scores = {k: v.cpu().float() for k, v in result.scores.items() if k.startswith("score_")}
        metrics = {f"auroc_{k[len('score_'):]}": float(binary_auroc(v, anomalous.long())) for k, v in scores.items()}
        metrics["normal_classes"] = normal
        metrics["num_anomalous"], metrics["num_normal"] = int(anomalous.sum()), int((~anomalous).sum())
        plot_scores(scores, anomalous, labels.cpu(), metrics, out / "anomaly.png")
        result.figures["anomaly"] = out / "anomaly.png"
        return metrics


def trained_data(module) -> dict:
    """The data config the module was trained with (empty for a module built outside a run)."""
    return (module.hparams.get("run_config") or {}).get("data", {})


def plot_scores(scores: dict, anomalous: torch.Tensor, labels: torch.Tensor, metrics: dict, path: Path) -> None:
    """ROC curve and per-class score distribution of each score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.functional.classification import binary_roc

    fig, axes = plt.subplots(len(scores), 2, figsize=(10, 3.6 * len(scores)), squeeze=False)
    for (name, s), (roc_ax, box_ax) in zip(scores.items(), axes):
        short = name[len("score_"):]
        fpr, tpr, _ = binary_roc(s, anomalous.long())
        roc_ax.plot(fpr, tpr, label=f"AUROC {metrics[f'auroc_{short}']:.3f}")
        roc_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {short}")
        roc_ax.legend(loc="lower right")
        classes = labels.unique().tolist()
        box_ax.boxplot([s[labels == c].numpy() for c in classes], showfliers=False)
        box_ax.set_xticks(range(1, len(classes) + 1), [f"{c}{'*' if c in metrics['normal_classes'] else ''}"
                                                       for c in classes])
        box_ax.set(xlabel="class (* = normal)", ylabel=short, title=f"{short} by class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
