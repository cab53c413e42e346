"""When a training batch ends an optimizer step: per-step callbacks act then, once per step.

Lightning calls on_train_batch_end after every batch; with trainer.accumulate_grad_batches = N only every Nth
batch of an epoch (and its last) steps the optimizer, and trainer.global_step stays the same for the batches between.
"""


def optimizer_stepped(trainer) -> bool:
    """Whether the training batch that just ended was the last of an optimizer step (always, without accumulation)."""
    return not trainer.fit_loop._should_accumulate()  # Lightning's own test, as its ThroughputMonitor asks it
