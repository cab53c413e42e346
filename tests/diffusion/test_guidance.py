"""Classifier-free guidance: end points, linearity in w, one batched pass, every net and objective, a closed form
with Gaussian data, and bad input from the API and from the sample command."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from difflab.diffusion import Denoiser, Epsilon, GuidedDenoiser, LinearSchedule, Score, V
from difflab.diffusion.gaussian import GaussianDataNet
from difflab.diffusion.parameterization import x0_from_eps
from difflab.diffusion.schedules import alpha_sigma
from difflab.errors import ConfigError
from difflab.module import DiffusionModule
from difflab.nets import DiT, UNet
from difflab.sample import class_labels
from difflab.sampling import DDIM
from tests.conftest import compose_train, run_in_process
from tests.test_bad_input import assert_one_line_error

OBJECTIVES = [Epsilon(), V(), Score()]
NUM_CLASSES = 3
ABAR = LinearSchedule().alphas_cumprod


def perturb(net, seed=0):
    """Move every weight off its init, so zero-initialised output layers do not hide the label."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return net.eval()


NETS = {
    "unet": lambda: UNet(1, 8, base_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(8,),
                         num_heads=2, groups=8, num_classes=NUM_CLASSES),
    "dit": lambda: DiT(8, 1, patch_size=2, hidden_size=32, depth=2, num_heads=2, num_classes=NUM_CLASSES),
}


@pytest.fixture(params=list(NETS), scope="module")
def net(request):
    return perturb(NETS[request.param]())


def inputs():
    g = torch.Generator().manual_seed(1)
    t = torch.tensor([0, 300, 600, 999])
    return torch.randn(len(t), 1, 8, 8, generator=g), t, torch.tensor([0, 1, 2, 1])


def guided(net, objective, y, w):
    return GuidedDenoiser(net, ABAR, objective, y, w, null_label=NUM_CLASSES)


@torch.no_grad()
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
def test_scale_one_is_conditional_and_zero_is_null_label(net, objective):
    x, t, y = inputs()
    cond = Denoiser(net, ABAR, objective, y=y)(x, t)
    null = Denoiser(net, ABAR, objective)(x, t)  # y=None selects the null class
    assert not torch.allclose(cond[1], null[1])  # the label matters, so the checks below mean something
    for got, want in [(guided(net, objective, y, 1.0)(x, t), cond), (guided(net, objective, y, 0.0)(x, t), null)]:
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])


def assert_affine(got, at0, at1, w):
    """got == at0 + w (at1 - at0) up to float32 rounding of numbers as large as the inputs (x0_hat reaches
    hundreds at t = T-1, where it divides by alpha)."""
    want = at0.double() + w * (at1.double() - at0.double())
    bound = 4 * torch.finfo(torch.float32).eps * (1 + w) * torch.maximum(at0.abs().max(), at1.abs().max())
    assert (got.double() - want).abs().max() <= bound


@torch.no_grad()
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
def test_guided_prediction_is_affine_in_scale_and_x0_matches_eps(net, objective):
    x, t, y = inputs()
    x0_0, eps_0 = guided(net, objective, y, 0.0)(x, t)
    x0_1, eps_1 = guided(net, objective, y, 1.0)(x, t)
    alpha, sigma = alpha_sigma(ABAR, t, x)
    for w in [0.5, 3.0, 7.5]:
        x0, eps = guided(net, objective, y, w)(x, t)
        assert_affine(eps, eps_0, eps_1, w)
        assert_affine(x0, x0_0, x0_1, w)
        # x0 belongs to the combined eps; skip t = T-1, where x0_from_eps divides float error by alpha ~ 0
        torch.testing.assert_close(x0[:-1], x0_from_eps(x, eps, alpha, sigma)[:-1].float(), rtol=1e-4, atol=1e-4)


class Recording(nn.Module):
    """Wraps a net and records the (batch size, labels) of every call."""

    def __init__(self, net):
        super().__init__()
        self.net, self.num_classes, self.calls = net, net.num_classes, []

    def forward(self, x, t, y=None):
        self.calls.append((x.shape[0], y))
        return self.net(x, t, y=y)


@torch.no_grad()
def test_one_batched_pass_over_conditional_and_null_labels(net):
    x, t, y = inputs()
    rec = Recording(net)
    guided(rec, Epsilon(), y, 3.0)(x, t)
    assert len(rec.calls) == 1
    size, labels = rec.calls[0]
    assert size == 2 * len(x)
    assert labels.tolist() == y.tolist() + [NUM_CLASSES] * len(y)


class TwoGaussians(nn.Module):
    """Exact 'network' for a class-conditional model with one class: data N(cond_mean, s^2) given label 0 and
    N(uncond_mean, s^2) given the null label 1, each per pixel."""

    def __init__(self, objective, cond_mean: float, uncond_mean: float, std: float):
        super().__init__()
        self.num_classes = 1
        self.cond = GaussianDataNet(ABAR, objective, cond_mean, std)
        self.uncond = GaussianDataNet(ABAR, objective, uncond_mean, std)

    def forward(self, x, t, y=None):
        null = torch.ones_like(t, dtype=torch.bool) if y is None else y == self.num_classes
        return torch.where(null[:, None, None, None], self.uncond(x, t), self.cond(x, t))


M_COND, M_UNCOND, S = 0.5, -0.25, 0.25
SHAPE = (1, 16, 16)


def gaussian_module(net, objective, steps):
    # Gaussian data are unbounded: no clamping of x0 to the image range.
    return DiffusionModule(net, LinearSchedule(), objective, SHAPE, sampler=DDIM(steps=steps, clip_x0=False))


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o.name)
def test_guided_gaussians_sample_like_data_with_the_extrapolated_mean(objective):
    """Both exact denoisers share the shrinkage k = a s^2 / (a^2 s^2 + sig^2): x0_hat = m + k (x - a m) is affine
    in m, so mixing them with weight w is the exact denoiser of N(m_w, s^2), m_w = m_u + w (m_c - m_u)."""
    two = gaussian_module(TwoGaussians(objective, M_COND, M_UNCOND, S), objective, steps=20)
    y = torch.zeros(16, dtype=torch.long)
    for w in [0.0, 1.0, 2.5]:
        m_w = M_UNCOND + w * (M_COND - M_UNCOND)
        one = gaussian_module(GaussianDataNet(ABAR, objective, m_w, S), objective, steps=20)
        torch.testing.assert_close(two.sample(16, seed=0, y=y, guidance_scale=w), one.sample(16, seed=0),
                                   rtol=1e-4, atol=1e-4)


def test_guided_ddim_mean_moves_past_the_conditional_mean():
    objective = Epsilon()
    module = gaussian_module(TwoGaussians(objective, M_COND, M_UNCOND, S), objective, steps=1000)
    y = torch.zeros(64, dtype=torch.long)
    means = {}
    for w in [0.0, 1.0, 3.0]:
        x = module.sample(64, seed=0, y=y, guidance_scale=w)
        means[w] = x.mean().item()
        assert means[w] == pytest.approx(M_UNCOND + w * (M_COND - M_UNCOND), abs=0.03 * S)
        assert x.std().item() == pytest.approx(S, rel=0.03)  # both classes have the same spread: guidance keeps it
    assert means[3.0] > M_COND


@pytest.mark.parametrize("kwargs,needles", [
    (dict(guidance_scale=-1.0, y=[0, 0]), ["guidance.scale=-1.0", "allowed: null", ">= 0"]),
    (dict(guidance_scale=2.0, y=[0, 3]), ["class label 3 is out of range", "allowed: 0..0", "model.num_classes=1"]),
    (dict(y=[-1, 0]), ["class label -1 is out of range"]),
    (dict(guidance_scale=2.0), ["guidance.scale=2.0 needs class labels"]),
    (dict(y=[0, 0, 0]), ["shape (3,)", "allowed: integers of shape (2,)"]),
], ids=["negative", "label", "negative-label", "no-labels", "length"])
def test_bad_guidance_input_is_one_line_before_sampling(kwargs, needles):
    rec = Recording(TwoGaussians(Epsilon(), M_COND, M_UNCOND, S))
    with pytest.raises(ConfigError) as e:
        gaussian_module(rec, Epsilon(), steps=5).sample(2, seed=0, **kwargs)
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in needles), str(e.value)
    assert rec.calls == []


def test_guidance_on_unconditional_model_is_refused():
    module = gaussian_module(GaussianDataNet(ABAR, Epsilon(), M_COND, S), Epsilon(), steps=5)
    with pytest.raises(ConfigError, match=r"^guidance.scale=3 needs a class-conditional model \(model.num_classes "
                                          r"set\); this checkpoint is unconditional$"):
        module.sample(2, y=torch.zeros(2, dtype=torch.long), guidance_scale=3)
    with pytest.raises(ConfigError, match="this checkpoint is unconditional"):
        module.sample(2, y=torch.zeros(2, dtype=torch.long))


# ---- the sample command --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conditional_ckpt(tmp_path_factory):
    """A 3-step tiny class-conditional run on digits (10 classes, labels dropped 10% of the time)."""
    from difflab.train import train

    out = tmp_path_factory.mktemp("conditional")
    train(compose_train(out, "logger=none", "model.num_classes=${data.num_classes}", "module.label_dropout=0.1"))
    return out / "checkpoints" / "last.ckpt"


def test_sample_command_draws_one_row_per_class(tmp_path, conditional_ckpt):
    proc = run_in_process("sample", f"ckpt={conditional_ckpt}", "num_samples=3", "sampler=ddim", "sampler.steps=3",
                          "guidance.scale=2.5", "guidance.classes=[0,7]", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    data = np.load(tmp_path / "samples.npz")
    assert data["labels"].tolist() == [0, 0, 0, 7, 7, 7]
    assert data["samples"].shape == (6, 1, 8, 8) and np.isfinite(data["samples"]).all()
    # save_grid enlarges 8x8 images to 48x48 tiles, 2-pixel padding: 3 columns x 2 rows
    assert Image.open(tmp_path / "grid.png").size == (3 * 50 + 2, 2 * 50 + 2)


def test_sample_command_rejects_out_of_range_class(tmp_path, conditional_ckpt):
    proc = run_in_process("sample", f"ckpt={conditional_ckpt}", "guidance.scale=2", "guidance.classes=[0,12]",
                          f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, "class label 12 is out of range", "allowed: 0..9")
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("classes,num_classes,needles", [
    ("some", 10, ["guidance.classes=some", "allowed: null, all, or a list"]),
    ([], 10, ["guidance.classes=[]"]),
    ([0, 1.5], 10, ["guidance.classes=[0, 1.5]"]),
    ("all", None, ["guidance.classes=all needs a class-conditional model", "this checkpoint is unconditional"]),
], ids=["word", "empty", "float", "unconditional"])
def test_bad_guidance_classes_are_one_line(classes, num_classes, needles):
    with pytest.raises(ConfigError) as e:
        class_labels(classes, num_classes, per_class=2)
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in needles), str(e.value)


def test_guidance_classes_give_per_class_labels_in_order():
    assert class_labels(None, 10, per_class=2) is None
    assert class_labels([4, 1], 10, per_class=2).tolist() == [4, 4, 1, 1]
    assert class_labels("all", 3, per_class=1).tolist() == [0, 1, 2]


def test_sample_command_refuses_guidance_on_unconditional_checkpoint(tmp_path, trained_ckpt):
    proc = run_in_process("sample", f"ckpt={trained_ckpt}", "guidance.scale=3", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(proc, "guidance.scale=3 needs a class-conditional model (model.num_classes set); "
                                "this checkpoint is unconditional")
    assert not (tmp_path / "grid.png").exists()
