"""Images per second for Lightning's ThroughputMonitor (conf/callbacks/default.yaml, `throughput`).

It logs `train/device/samples_per_sec` (and `train/samples_per_sec`, summed over processes, when there are
several), averaged over its `window_size` most recent steps (nothing before that many steps), plus the running
totals `train/samples`, `train/batches` and `train/time` (seconds since training started, sampling included).
"""

import warnings

# difflab's modules declare no FLOP count (`flops_per_batch`): images/s is the measure here, so Lightning's
# reminder to define one would only be noise on every run.
warnings.filterwarnings("ignore", message=r"When using the `ThroughputMonitor`, you need to define a `flops_per_batch`")


def batch_size(batch) -> int:
    """Images in a batch: (images [N x C x H x W], labels [N]) or images alone."""
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    return len(images)
