"""trainer.accumulate_grad_batches: each optimizer step averages its batches' gradients, each batch draws its own
timesteps and noise, per-step callbacks act once per optimizer step, and a resumed run continues exactly."""

import copy
import csv

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from difflab.build import build_module, instantiate
from difflab.callbacks.grad_norm import GradNorm
from difflab.callbacks.steps import ends_optimizer_step
from difflab.checkpoint import load_checkpoint
from difflab.errors import ConfigError
from difflab.sampling.noise import mix_seed
from difflab.train import train
from difflab.trainer import Trainer
from tests.conftest import TINY, compose_train, run_in_process


class Probe(Callback):
    """Records every batch (with the state of the generator its t and eps were drawn from); before every optimizer
    step, the weights the step starts from and the gradients it was handed (before clipping); after it, the loss and
    gradient norm it logged."""

    def __init__(self, module):
        self.batches, self.steps = [], []
        draw = module.losses

        def recording(x0, y, generator):
            self.batches.append({"x0": x0.clone(), "y": y, "state": generator.get_state(), "step": module.global_step})
            losses, t = draw(x0, y, generator)
            self.batches[-1]["t"] = t
            return losses, t

        module.losses = recording

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps.append({
            "weights": copy.deepcopy(pl_module.net.state_dict()),
            "grads": [p.grad.clone() for p in pl_module.parameters()],
            "batches": [b for b in self.batches if b["step"] == trainer.global_step],
        })

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if ends_optimizer_step(trainer):  # what the step sent to the loggers
            metrics = trainer.callback_metrics
            self.steps[-1]["logged"] = {k: float(metrics[k]) for k in ("train/loss", "train/grad_norm")}


def fit_with_probe(tmp_path, *overrides):
    cfg = compose_train(tmp_path, "logger=none", "trainer.precision=32", "trainer.log_every_n_steps=1", *overrides)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule.image_shape)
    fresh = copy.deepcopy(module)  # for recomputing the steps' losses outside the loop
    probe = Probe(module)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[GradNorm(), probe])
    trainer.fit(module, datamodule=datamodule)
    return fresh, probe


def test_an_accumulated_step_averages_the_gradients_of_its_batches(tmp_path):
    # 3 batches an epoch, 2 per step: step 1 holds batches 0 and 1, step 2 the epoch's last batch alone
    fresh, probe = fit_with_probe(tmp_path, "data.batch_size=32", "trainer.accumulate_grad_batches=2",
                                  "+trainer.limit_train_batches=3", "trainer.max_steps=2")
    assert [len(s["batches"]) for s in probe.steps] == [2, 1]
    for step in probe.steps:
        fresh.net.load_state_dict(step["weights"])
        fresh.zero_grad()
        losses = [fresh.losses(b["x0"], b["y"], torch.Generator().set_state(b["state"]))[0].mean()
                  for b in step["batches"]]
        loss = torch.stack(losses).mean()  # the mean over the step's batches: not their sum, not / 2 for one
        loss.backward()
        for p, grad in zip(fresh.parameters(), step["grads"]):
            torch.testing.assert_close(grad, p.grad, rtol=1e-5, atol=1e-7)
        assert step["logged"]["train/loss"] == pytest.approx(loss.item(), rel=1e-5)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in step["grads"]]))
        assert step["logged"]["train/grad_norm"] == pytest.approx(norm.item(), rel=1e-5)
    a, b = probe.steps[0]["batches"]
    assert not torch.equal(a["state"], b["state"]) and not torch.equal(a["t"], b["t"])  # each batch its own noise
    states = [bytes(b["state"].numpy()) for b in probe.batches]
    assert len(set(states)) == len(states) == 3


def test_without_accumulation_the_training_noise_is_what_it_was(tmp_path):
    """accumulate_grad_batches=1 keeps the generator of each step seeded by (seed, global step, rank), so such runs
    draw bit for bit what they drew before accumulation was counted in."""
    _, probe = fit_with_probe(tmp_path, "trainer.max_steps=3")
    for step, batch in enumerate(probe.batches):
        before = torch.Generator().manual_seed(mix_seed(mix_seed(0, step), 0))  # seed 0, rank 0
        assert torch.equal(batch["state"], before.get_state()), step


def test_two_batches_of_32_have_the_loss_statistics_of_one_batch_of_64(tmp_path):
    """The untrained UNet outputs exactly 0, so each image's epsilon loss is the mean of its 64 eps^2: expectation 1
    and, over a step of 64 images, standard deviation sqrt(2 / 64 / 64) = 0.022, whichever way the step is split."""
    one = train(compose_train(tmp_path / "one", "data.batch_size=64", "trainer.max_steps=1", "logger=none"))
    two = train(compose_train(tmp_path / "two", "data.batch_size=32", "trainer.accumulate_grad_batches=2",
                              "trainer.max_steps=1", "logger=none"))
    assert one["train/loss"] == pytest.approx(1, abs=0.1) and two["train/loss"] == pytest.approx(1, abs=0.1)


def test_per_step_callbacks_act_once_per_optimizer_step(tmp_path):
    train(compose_train(
        tmp_path, "trainer.accumulate_grad_batches=3", "trainer.max_steps=4", "trainer.log_every_n_steps=1",
        "callbacks.checkpoint.every_n_train_steps=2", "callbacks.sample_grid.every_n_steps=2",
        "callbacks.sample_grid.num_samples=4", "callbacks.trajectory.every_n_steps=2",
        "callbacks.loss_curve.every_n_steps=2",
    ))
    for folder in ("samples", "trajectories"):
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == ["step_0000002.png", "step_0000004.png"]
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["last.ckpt", "step_0000002.ckpt", "step_0000004.ckpt"]
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4
    assert int(ckpt["averaging_state"]["n_averaged"]) == 4  # EMA: once per optimizer step, not per batch (12)
    curve = ckpt["callbacks"]["LossCurve"]["train"]
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [(int(r["step"]), float(r["train/loss"])) for r in rows if r.get("train/loss")]
    assert [s for s, _ in curve] == [1, 2, 3, 4] and [s for s, _ in logged] == [0, 1, 2, 3]
    for (_, drawn), (_, sent) in zip(curve, logged):  # loss.csv and the loggers: the step's mean over 3 batches
        assert drawn == pytest.approx(sent, rel=1e-5)
    assert [int(r["step"]) for r in rows if r.get("lr-AdamW")] == [0, 1, 2, 3]  # the LR monitor: once per step


@pytest.mark.slow
def test_resume_mid_epoch_with_accumulation_continues_exactly(tmp_path):
    # 6 batches of 256 an epoch, 4 per step: steps of 4 and 2 batches; step 3's checkpoint is 4 batches into epoch 2
    common = ["trainer.max_steps=4", "data.batch_size=256", "trainer.accumulate_grad_batches=4",
              "callbacks.checkpoint.every_n_train_steps=3", "callbacks.loss_curve.every_n_steps=0",
              "trainer.check_val_every_n_epoch=100"]
    straight = tmp_path / "straight"
    train(compose_train(straight, *common))
    mid = straight / "checkpoints" / "step_0000003.ckpt"
    resumed = tmp_path / "resumed"
    train(compose_train(resumed, *common, f"ckpt_path={mid}"))

    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 4
    assert int(b["averaging_state"]["n_averaged"]) == 4
    losses_a, losses_b = dict(a["callbacks"]["LossCurve"]["train"]), dict(b["callbacks"]["LossCurve"]["train"])
    assert losses_b[4] == pytest.approx(losses_a[4], rel=1e-6, abs=1e-8)  # the same 2 batches, the same noise
    for key in a["current_model_state"]:
        torch.testing.assert_close(b["current_model_state"][key], a["current_model_state"][key], rtol=1e-5, atol=1e-6)
    for key in a["state_dict"]:
        torch.testing.assert_close(b["state_dict"][key], a["state_dict"][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value,needle", [
    ("0", "trainer.accumulate_grad_batches=0 is not valid; allowed: an integer >= 1"),
    ("-2", "trainer.accumulate_grad_batches=-2 is not valid; allowed: an integer >= 1"),
    ("1.5", "trainer.accumulate_grad_batches takes an integer"),
    ("two", "trainer.accumulate_grad_batches takes an integer"),
])
def test_bad_accumulate_grad_batches_is_one_line(tmp_path, value, needle, no_fit):
    proc = run_in_process("train", *TINY, f"hydra.run.dir={tmp_path}", f"trainer.accumulate_grad_batches={value}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and needle in line, line


@pytest.mark.parametrize("value", [0, True, 2.0, None])
def test_trainer_refuses_a_bad_accumulate_grad_batches(value):
    with pytest.raises(ConfigError, match=rf"^trainer.accumulate_grad_batches={value} is not valid; allowed: an "
                                          r"integer >= 1 \(batches of data.batch_size per optimizer step"):
        Trainer(accelerator="cpu", precision="32", accumulate_grad_batches=value, logger=False)
