"""What several bench scripts share: the evaluate command's FID-domain evaluator."""

from pathlib import Path

from hydra import compose, initialize_config_dir

from difflab.metrics.evaluator import build_evaluator

CONF = Path(__file__).resolve().parent.parent / "conf"


def fid_evaluator(data_name: str, num_samples: int, num_real: int, seed: int):
    """The evaluate command's FID-domain evaluator (conf/evaluate.yaml with metrics=[fid])."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["ckpt=unused", "metrics=[fid]", f"metrics.domain_weights={data_name}"])
    return build_evaluator(cfg.metrics, num_samples, num_real, seed=seed)
