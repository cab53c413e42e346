"""End-to-end training on tiny configs: every combination composes and trains; overfitting; exact resume."""

import importlib.util
import itertools
import math

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from difflab.build import instantiate, module_from_checkpoint
from difflab.callbacks.ema import EMA, ema_decay
from difflab.checkpoint import load_checkpoint
from difflab.diffusion.denoiser import LEVELS
from difflab.errors import ConfigError
from difflab.train import train
from tests.conftest import CONF, compose_train

MODELS = ["unet_small", "dit_small", "diffusers_unet"]  # diffusers_unet: with the diffusers extra only
SCHEDULES = ["linear", "cosine"]
OBJECTIVES = ["epsilon", "v", "score"]
SAMPLERS = ["ddpm", "ddim"]


COMBINATIONS = list(itertools.product(MODELS, SCHEDULES, OBJECTIVES))
no_diffusers = importlib.util.find_spec("diffusers") is None


def with_extras(cases):
    """Cases of model=diffusers_unet are skipped where its extra is not installed."""
    skip = pytest.mark.skipif(no_diffusers, reason="no diffusers extra")
    return [pytest.param(*c, marks=[skip] if "diffusers_unet" in c else []) for c in cases]


@pytest.mark.parametrize("model,schedule,objective", with_extras(COMBINATIONS))
def test_every_combination_trains_and_samples(tmp_path, model, schedule, objective):
    """Every model x schedule x objective trains once; its checkpoint then samples with every sampler. The sampler
    the run is configured with (for its final samples) alternates along the grid, so each sampler also goes through
    training with each model, schedule and objective."""
    i = COMBINATIONS.index((model, schedule, objective))
    sampler, other = SAMPLERS[i % 2], SAMPLERS[1 - i % 2]
    cfg = compose_train(
        tmp_path, f"model={model}", f"schedule={schedule}", f"objective={objective}", f"sampler={sampler}",
        "sampler.steps=4", "final_samples=4", "logger=none",
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])
    assert (tmp_path / "samples.png").is_file()
    module = module_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert type(module.sampler).__name__ == sampler.upper()
    for chosen in [None, instantiate(OmegaConf.load(CONF / "sampler" / f"{other}.yaml"), steps=4)]:
        x = module.sample(3, seed=0, sampler=chosen)  # None: the checkpoint's own sampler
        assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all(), chosen


CONTINUOUS = [("unet_small", "rectified_flow", None), ("dit_small", "rectified_flow", None), ("unet_small", "edm", None),
              ("dit_small", "edm", None), ("unet_small", "rectified_flow", "x0"), ("unet_small", "edm", "flow")]


@pytest.mark.parametrize("model,schedule,objective", CONTINUOUS)
def test_continuous_processes_train_and_sample_with_every_sampler(tmp_path, model, schedule, objective):
    """schedule=rectified_flow / edm train (with the objective each chooses, or the one given) and their checkpoint
    samples with every sampler config."""
    cfg = compose_train(tmp_path, f"model={model}", f"schedule={schedule}", "final_samples=4", "logger=none",
                        *([f"objective={objective}"] if objective else []), tiny_schedule=False)
    assert cfg.objective._target_.endswith({"rectified_flow": "Flow", "edm": "EDMPrecond"}[schedule]
                                           if objective is None else {"x0": "X0", "flow": "Flow"}[objective])
    metrics = train(cfg)
    assert math.isfinite(metrics["train/loss"])
    assert (tmp_path / "samples.png").is_file()
    module = module_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert module.schedule.timesteps is None and module.timesteps == LEVELS and module.schedule.name == schedule
    for name in sorted(p.stem for p in (CONF / "sampler").glob("*.yaml")):
        sampler = instantiate(OmegaConf.load(CONF / "sampler" / f"{name}.yaml"), steps=4)
        x = module.sample(2, seed=0, sampler=sampler)
        assert x.shape == (2, 1, 8, 8) and torch.isfinite(x).all(), name


@pytest.mark.parametrize("model", with_extras([(m,) for m in MODELS]))
def test_class_conditional_training_with_label_dropout(tmp_path, model):
    cfg = compose_train(tmp_path, f"model={model}", "model.num_classes=${data.num_classes}", "module.label_dropout=0.2",
                        "final_samples=20")
    assert math.isfinite(train(cfg)["train/loss"])
    module = module_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert module.sample(4, seed=0, y=torch.tensor([0, 1, 2, 10])).shape == (4, 1, 8, 8)
    # samples.png of a conditional model: one column per class (10 columns of 8x8 digits enlarged to 48 + padding)
    from PIL import Image

    assert Image.open(tmp_path / "samples.png").size[0] == 2 + 10 * (48 + 2)


def fixed_batch_loss(module, batch, repeats=16) -> float:
    """Loss of one batch averaged over many (t, eps) draws from a fixed generator."""
    x0, y = batch
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return module.losses(x0.repeat(repeats, 1, 1, 1), y.repeat(repeats), g)[0].mean().item()


@pytest.mark.slow
def test_overfit_one_batch_cuts_loss_5x(tmp_path):
    from difflab.build import build_module

    # Cosine decay rather than the default warm-up: 200 steps reach what 400 warm-up steps did (loss / ~7).
    cfg = compose_train(tmp_path, "debug=overfit", "trainer.max_steps=200", "lr_scheduler=cosine", "logger=none",
                        "data.batch_size=8", "model.base_channels=32", "optimizer.lr=2e-3")
    L.seed_everything(cfg.seed, verbose=False)  # the initial weights, whatever ran before in this process
    dm = instantiate(cfg.data)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    dm.trainer = trainer
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    module = build_module(cfg, dm.image_shape)
    before = fixed_batch_loss(module, batch)
    trainer.fit(module, datamodule=dm)
    assert torch.equal(next(iter(dm.train_dataloader()))[0], batch[0])  # the same batch throughout
    after = fixed_batch_loss(module, batch)
    print(f"overfit one batch: loss {before:.4f} -> {after:.4f}")
    assert after < before / 5, (before, after)


@pytest.mark.slow
def test_resume_from_last_continues_exactly(tmp_path):
    epochs = ["trainer.max_steps=-1", "callbacks.checkpoint.every_n_train_steps=null",
              "+callbacks.checkpoint.every_n_epochs=1",
              "+callbacks.checkpoint.save_on_train_epoch_end=true", "data.batch_size=256", "callbacks.loss_curve.every_n_steps=0"]
    straight = tmp_path / "straight"
    train(compose_train(straight, *epochs, "trainer.max_epochs=2"))
    part = tmp_path / "part"
    train(compose_train(part, *epochs, "trainer.max_epochs=1"))
    first = load_checkpoint(part / "checkpoints" / "last.ckpt")
    train(compose_train(part, *epochs, "trainer.max_epochs=2", f"ckpt_path={part / 'checkpoints' / 'last.ckpt'}"))

    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(part / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 2 * first["global_step"]
    losses_a = dict(a["callbacks"]["LossCurve"]["train"])
    losses_b = dict(b["callbacks"]["LossCurve"]["train"])
    step = first["global_step"] + 1  # the first step after the resume
    assert losses_b[step] == pytest.approx(losses_a[step], rel=1e-6, abs=1e-8)
    for key in a["state_dict"]:  # EMA weights
        torch.testing.assert_close(b["state_dict"][key], a["state_dict"][key], rtol=1e-5, atol=1e-6)
    for key in a["current_model_state"]:  # raw weights
        torch.testing.assert_close(b["current_model_state"][key], a["current_model_state"][key], rtol=1e-5, atol=1e-6)
    opt_a, opt_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for k in opt_a:
        torch.testing.assert_close(opt_b[k]["exp_avg_sq"], opt_a[k]["exp_avg_sq"], rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_resume_mid_epoch_sees_the_batches_it_would_have(tmp_path):
    # 1617 digits at batch 256: 6 batches an epoch; the step-8 checkpoint stops 2 batches into the second epoch.
    common = ["trainer.max_steps=11", "data.batch_size=256", "callbacks.checkpoint.every_n_train_steps=8",
              "callbacks.loss_curve.every_n_steps=0", "trainer.check_val_every_n_epoch=100"]
    straight = tmp_path / "straight"
    train(compose_train(straight, *common))
    mid = straight / "checkpoints" / "step_0000008.ckpt"
    assert load_checkpoint(mid)["global_step"] == 8
    resumed = tmp_path / "resumed"
    train(compose_train(resumed, *common, f"ckpt_path={mid}"))

    a = load_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = load_checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 11
    losses_a, losses_b = dict(a["callbacks"]["LossCurve"]["train"]), dict(b["callbacks"]["LossCurve"]["train"])
    for step in (9, 10, 11):  # the batches after the resume, each from the same images as without the stop
        assert losses_b[step] == pytest.approx(losses_a[step], rel=1e-6, abs=1e-8), step
    for key in a["current_model_state"]:
        torch.testing.assert_close(b["current_model_state"][key], a["current_model_state"][key], rtol=1e-5, atol=1e-6)


def test_checkpoint_holds_ema_weights_for_sampling(tmp_path):
    train(compose_train(tmp_path, "trainer.max_steps=5", "callbacks.ema.decay=0.5",
                        "callbacks.checkpoint.every_n_train_steps=2"))
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 5  # last.ckpt holds the final step, not the last periodic save (4)
    ema, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)
    module = module_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", precision="32")
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, ema[k])
    convs = [p for p in module.net.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)  # float32 CPU: NHWC
    x, t = torch.randn(3, *module.image_shape), torch.tensor([0, 500, 999])
    with torch.no_grad():
        fast = module.net(x, t)
        module.net.to(memory_format=torch.contiguous_format)
        torch.testing.assert_close(fast, module.net(x, t), rtol=1e-4, atol=1e-5)  # same maths


def test_ema_decay_warms_up():
    n = torch.tensor([0.0, 1.0, 10.0, 1e6])
    torch.testing.assert_close(ema_decay(n, 0.999, True), torch.tensor([0.1, 2 / 11, 11 / 20, 0.999], dtype=torch.float64))
    torch.testing.assert_close(ema_decay(n, 0.999, False), torch.tensor(0.999, dtype=torch.float64))


def test_ema_update_is_averaged_models_update_parameters():
    """EMA._update, over tensor lists gathered once, gives AveragedModel.update_parameters' tensors exactly:
    parameters lerped with the warm-up decay, float buffers too, integer buffers copied, the first update a copy."""
    from torch.optim.swa_utils import AveragedModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(6, 2))
    ema = EMA(decay=0.9)
    ema._average_model = AveragedModel(model, use_buffers=True, multi_avg_fn=ema._average)
    reference = AveragedModel(model, use_buffers=True, multi_avg_fn=ema._average)
    for step in range(4):
        model(torch.randn(3, 1, 8, 8))  # moves BatchNorm's running statistics and its integer counter
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema._update(model)
        reference.update_parameters(model)
        ours = [*ema._average_model.parameters(), *ema._average_model.buffers()]
        theirs = [*reference.parameters(), *reference.buffers()]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True)), step
    assert ema._average_model.n_averaged.item() == reference.n_averaged.item() == 4


def test_progress_bar_switched_off_drops_the_progress_bar_callback(tmp_path):
    # Lightning refuses enable_progress_bar=False next to a progress-bar callback; the default callbacks have one.
    with initialize_config_dir(str(CONF), version_base="1.3"):
        default_callbacks = compose("train").callbacks
    assert "progress_bar" in default_callbacks
    cfg = compose_train(tmp_path, "trainer.max_steps=2", "logger=none")  # enable_progress_bar=false
    with open_dict(cfg):
        cfg.callbacks.progress_bar = default_callbacks.progress_bar
    train(cfg)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_init_weights_starts_a_new_run_from_a_checkpoints_raw_weights(tmp_path):
    first = tmp_path / "first"
    train(compose_train(first, "trainer.max_steps=6", "logger=none", "callbacks.ema.decay=0.5"))
    source = load_checkpoint(first / "checkpoints" / "last.ckpt")
    second = tmp_path / "second"
    cfg = compose_train(second, "trainer.max_steps=3", "logger=none", "optimizer.lr=0",
                        f"init_weights={first / 'checkpoints' / 'last.ckpt'}")
    train(cfg)
    ckpt = load_checkpoint(second / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3  # a new run: its own step count, optimizer and schedule
    assert ckpt["optimizer_states"][0]["state"][0]["step"].item() == 3
    for key, raw in source["current_model_state"].items():  # lr 0: the raw weights are the source run's raw weights
        torch.testing.assert_close(ckpt["current_model_state"][key], raw)
        torch.testing.assert_close(ckpt["state_dict"][key], raw)  # and the EMA restarted from them
    assert any(not torch.equal(source["state_dict"][k], source["current_model_state"][k]) for k in source["state_dict"])


@pytest.mark.parametrize("overrides,needles", [
    (["model.base_channels=8"], ["init_weights=", "does not fit this run's model", "must match"]),
    (["ckpt_path=RUN"], ["ckpt_path", "init_weights", "not both"]),
], ids=["mismatch", "both"])
def test_init_weights_bad_input_is_one_line_error(tmp_path, overrides, needles):
    from difflab.errors import ConfigError

    first = tmp_path / "first"
    train(compose_train(first, "trainer.max_steps=2", "logger=none"))
    last = first / "checkpoints" / "last.ckpt"
    cfg = compose_train(tmp_path / "second", "trainer.max_steps=2", "logger=none", f"init_weights={last}",
                        *[o.replace("RUN", str(last)) for o in overrides])
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert len(str(err.value).splitlines()) == 1
    for needle in needles:
        assert needle in str(err.value)
    assert not (tmp_path / "second" / "checkpoints").exists()


def test_precision_and_memory_format_choices():
    from difflab.build import channels_last
    from difflab.precision import autocast_dtype, resolve_precision

    assert channels_last("auto", "32-true", "cpu") and not channels_last("auto", "bf16-mixed", "cpu")
    assert not channels_last("auto", "32-true", "cuda") and channels_last(True, "bf16-mixed", "cuda")
    with pytest.raises(ConfigError, match=r"module.channels_last=yes is not valid; allowed: auto, true, false"):
        channels_last("yes", "32-true", "cpu")
    resolved, why = resolve_precision("auto", "cpu")
    assert resolved in ("bf16-mixed", "32-true") and why.startswith("auto: this CPU has")
    assert autocast_dtype("bf16-mixed") == torch.bfloat16 and autocast_dtype("32-true") is None
    with pytest.raises(ConfigError, match=r"trainer.precision=16-mixed needs a CUDA GPU .*allowed here: auto, 32"):
        resolve_precision("16-mixed", "cpu")
    with pytest.raises(ConfigError, match=r"precision=fp8 is not valid; allowed: auto, 32, bf16-mixed"):
        resolve_precision("fp8", "cpu", key="precision")


def test_unscaled_gradients_are_clipped_here_and_float16_ones_left_to_lightning():
    from difflab.precision import clip_unscaled

    w = torch.nn.Parameter(torch.zeros(2))
    w.grad = torch.tensor([3.0, 4.0])
    assert not clip_unscaled([w], "16-mixed", 1.0, "norm") and not clip_unscaled([w], "bf16-mixed", 0, None)
    assert w.grad.tolist() == [3.0, 4.0]
    assert clip_unscaled([w], "bf16-mixed", 1.0, "norm") and w.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert clip_unscaled([w], "bf16-mixed", 0.5, "value") and w.grad.max().item() == 0.5
    # float32, a norm computed already for this step (trainer.step_grad_norm): scaled by value / that norm
    w.grad = torch.tensor([3.0, 4.0])
    assert clip_unscaled([w], "32-true", 1.0, "norm", lambda: torch.tensor(10.0))
    torch.testing.assert_close(w.grad, torch.tensor([0.3, 0.4]))


class _NormsAroundTheStep(L.Callback):
    """The gradients' total norm as the optimizer is handed them (before clipping) and as it steps with them."""

    def __init__(self):
        self.before, self.after = [], []

    @staticmethod
    def _norm(module):
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()
                                                           if p.grad is not None])))

    def on_train_start(self, trainer, pl_module):
        optimizer = trainer.optimizers[0]
        step = optimizer.step

        def recording_step(closure=None, **kwargs):
            def run():  # Lightning's closure: forward, backward, the hooks, then clipping
                loss = closure()
                self.after.append(self._norm(pl_module))
                return loss
            return step(run, **kwargs)

        optimizer.step = recording_step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.before.append(self._norm(pl_module))


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_gradients_are_clipped_to_the_norm_the_callbacks_share(tmp_path, precision):
    cfg = compose_train(tmp_path, "logger=none", f"trainer.precision={precision}", "trainer.gradient_clip_val=0.001",
                        "trainer.max_steps=3")
    datamodule = instantiate(cfg.data)
    from difflab.build import build_module

    module = build_module(cfg, datamodule.image_shape)
    probe = _NormsAroundTheStep()
    callbacks = [instantiate(cfg.callbacks.divergence), instantiate(cfg.callbacks.grad_norm), probe]
    trainer = instantiate(cfg.trainer, logger=False, callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule)
    assert len(probe.after) == 3 and all(b > 0.01 for b in probe.before)
    assert probe.after == pytest.approx([0.001] * 3, rel=1e-3)
