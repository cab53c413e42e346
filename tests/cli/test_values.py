"""Command-line values are checked against the annotation of the parameter they feed, else the key's default."""

import typing
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from difflab.cli.values import matches, type_error

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    "value,tp,verdict",
    [
        (3, int, True), (True, int, False), (1.5, int, False), ("x", int, False),
        (3, float, True), (False, float, False), ("abc", float, False),
        ("bf16-mixed", typing.Union[typing.Literal[32, 16], typing.Literal["bf16-mixed"], None], True),
        (33, typing.Union[typing.Literal[32, 16], typing.Literal["bf16-mixed"], None], False),
        (True, typing.Literal[1, 0], False),  # True == 1 in Python, not in a config
        ("auto", typing.Union[list[int], str, int], True),
        (OmegaConf.create([1, 2]), typing.Sequence[int], True), (3, tuple[int, ...], False),
        ("abc", float | object.__class__, None),  # a class a config value cannot be checked against: undecided
    ],
)
def test_matches(value, tp, verdict):
    assert matches(value, tp) is verdict


def check(*overrides):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return type_error(list(overrides), lambda o: compose("train", overrides=o),
                          lambda key: (CONF / key.replace(".", "/")).is_dir())


def test_annotation_decides_where_the_target_has_one():
    assert check("trainer.precision=bf16-mixed", "trainer.devices=auto", "trainer.deterministic=warn") is None
    assert "sampler.eta=x is not valid: sampler.eta takes a number" == check("sampler=dpmpp_2m", "sampler.eta=x")
    assert "trainer.max_steps takes an integer" in check("trainer.max_steps=2.5")


def test_default_decides_where_the_annotation_cannot():
    # AdamW's lr is float | Tensor: a string fits neither, but Tensor cannot be checked, so the default (a float) decides
    assert check("optimizer.lr=abc") == "optimizer.lr=abc is not valid: optimizer.lr takes a number (default: 0.001)"
    assert check("optimizer.lr=1") is None


def test_null_groups_and_strings_pass():
    assert check("sampler.steps=null", "model=dit_small", "objective=v", "data.root=/tmp", "seed=3") is None
    assert "seed=x is not valid" in check("seed=x")  # no target: the default (an integer) decides
