"""train_classifier(cfg): fit the FID-domain classifier on cfg.data, measure its test accuracy, save its weights."""

import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from difflab.build import instantiate
from difflab.errors import ConfigError
from difflab.metrics.domain import WEIGHTS_DIR, DomainClassifier, save_domain_classifier


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image [N x C x H x W] by whole pixels in [-max_shift, max_shift], edges replicated."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    shift = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(x)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0] / w, 2 * shift[:, 1] / h  # one pixel = 2/size in grid units
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)


@torch.no_grad()
def accuracy(classifier: DomainClassifier, loader) -> float:
    """Share of (x, y) batches in `loader` whose argmax logit is the label; the classifier's mode is kept."""
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    correct = total = 0
    for x, y in loader:
        correct += (classifier(x.to(device)).argmax(1).cpu() == y).sum().item()
        total += len(y)
    classifier.train(was_training)
    return correct / total


class ClassifierModule(L.LightningModule):
    """Cross-entropy on randomly shifted images; AdamW with a one-cycle learning rate."""

    def __init__(self, classifier: DomainClassifier, *, lr: float, weight_decay: float, max_shift: int,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["classifier"])
        self.classifier = classifier

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.classifier(random_shift(x, self.hparams.max_shift))
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.classifier(x).argmax(1) == y).float().mean(), prog_bar=True, batch_size=len(y))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.hparams.lr, total_steps=self.trainer.estimated_stepping_batches, pct_start=0.15)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def default_out(dataset: str) -> Path:
    """Where `out: null` writes: the shipped weights of that dataset, read by load_domain_classifier(dataset)."""
    return WEIGHTS_DIR / f"{dataset}.pt"


def train_classifier(cfg: DictConfig) -> dict[str, float]:
    """Train the classifier cfg describes on cfg.data and write it to cfg.out (null: the shipped path of
    cfg.dataset); returns {"test_accuracy": share of the datamodule's test split classified right}."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    if datamodule.num_classes is None:
        raise ConfigError("data.num_classes=null, but the domain classifier learns the labels; set "
                          "data.num_classes to the number of classes")
    if not isinstance(cfg.max_shift, int) or cfg.max_shift < 0:
        raise ConfigError(f"max_shift={cfg.max_shift} must be an integer >= 0 (pixels)")
    channels, size, _ = datamodule.image_shape
    classifier = DomainClassifier(channels, size, datamodule.num_classes, **cfg.classifier)
    if not cfg.get("out") and not cfg.get("dataset"):
        raise ConfigError("out=null needs a dataset name to pick the weights file; set data.name (or dataset) "
                          "or give out=PATH.pt")
    out = Path(cfg.out).expanduser() if cfg.get("out") else default_out(cfg.dataset)
    module = ClassifierModule(classifier, lr=cfg.lr, weight_decay=cfg.weight_decay, max_shift=cfg.max_shift,
                              label_smoothing=cfg.label_smoothing)
    trainer = instantiate(cfg.trainer)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start

    test_accuracy = accuracy(classifier, datamodule.test_dataloader())
    if trainer.is_global_zero:
        save_domain_classifier(classifier.cpu(), out, dataset=str(cfg.dataset), test_accuracy=test_accuracy,
                               train_steps=trainer.global_step)
        print(f"test accuracy {test_accuracy:.4f} on {len(datamodule.test_set)} {cfg.dataset} test images "
              f"after {trainer.global_step} steps ({seconds:.0f} s); weights written to {out}")
    return {"test_accuracy": test_accuracy, "train_seconds": seconds}
