"""The panel of `difflab-apply`: one row per image, one column per Result column, names and scores as labels."""

from pathlib import Path

import torch

from difflab.apps.result import Result


def panel_order(result: Result, rows: int) -> torch.Tensor:
    """Indices of the images the panel shows, top to bottom: the first `rows`, or the `rows` highest of the score
    result.panel_sort names."""
    if result.panel_sort:
        return result.scores[result.panel_sort].cpu().argsort(descending=True)[:rows]
    return torch.arange(min(rows, len(next(iter(result.columns.values())))))


def save_panel(result: Result, path: Path, rows: int) -> None:
    """Rows = the first `rows` images (by result.panel_sort, highest first, if set), columns = result.columns with
    their names on top; the row's index (and score, where the task gives one) on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from difflab.callbacks.images import to_unit

    names = list(result.columns)
    order = panel_order(result, rows)
    n = len(order)
    score_name = result.panel_sort or next(iter(result.scores), None)
    fig, axes = plt.subplots(n, len(names), figsize=(1.3 * len(names) + 0.3, 1.3 * n + 0.45), squeeze=False)
    for i, k in enumerate(order.tolist()):
        label = f"#{k}" + (f"\n{float(result.scores[score_name][k]):.3g}" if score_name else "")
        axes[i][0].set_ylabel(label, fontsize=7)
    if score_name:
        fig.text(0.005, 0.998, f"rows: image index, {score_name.replace('_', ' ')}"
                 + (" (highest first)" if result.panel_sort else ""), fontsize=6, va="top")
    for j, name in enumerate(names):
        images = to_unit(result.columns[name][order])
        for i in range(n):
            ax = axes[i][j]
            image = images[i].permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, vmin=0, vmax=1, interpolation="nearest",
                      cmap="inferno" if name.endswith("map") else "gray")  # score maps as heat
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(name.replace("_", " "), fontsize=8)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 1 - 0.12 / (1.3 * n + 0.45)))
    fig.savefig(path, dpi=120)
    plt.close(fig)
