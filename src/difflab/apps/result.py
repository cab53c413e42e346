"""What an application returns: image columns for the panel, figures, per-image scores and summary metrics."""

from dataclasses import dataclass, field

import torch


@dataclass
class Observation:
    """The inputs of a task: `x` [N x C x H x W] in [-1, 1] as given, `reference` the clean images when known
    (then the task degrades them itself and can score its result), `labels` [N] when known, `seed` for the noise."""

    x: torch.Tensor
    reference: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    seed: int = 0
    start_index: int = 0  # noise for image i is seeded by (seed, start_index + i)


@dataclass
class Result:
    """columns: name -> images [N x C x H x W] in [-1, 1], drawn left to right in the panel (input | result |
    reference ...); outputs: the columns that are the task's answers (FID-domain is computed for these and
    their baselines); metrics: name -> float; scores: name -> per-image values [N]; figures: name -> PNG path
    written by the task (e.g. a ROC curve); panel_sort: the score whose highest values the panel shows first (None =
    the images as given; anomaly detection sorts by its reconstruction score)."""

    columns: dict[str, torch.Tensor]
    outputs: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    panel_sort: str | None = None
