"""When a training batch ends an optimizer step: per-step callbacks act then, once per step.

Lightning calls on_train_batch_start and on_train_batch_end around every batch; with trainer.accumulate_grad_batches
= N only every Nth batch of an epoch (and its last) steps the optimizer, and trainer.global_step stays the same for
the batches between.
"""


def ends_optimizer_step(trainer) -> bool:
    """Whether the current training batch is the last of its optimizer step (always, without accumulation); asked
    from on_train_batch_start to on_train_batch_end."""
    return not trainer.fit_loop._should_accumulate()  # Lightning's own test, as its ThroughputMonitor asks it
