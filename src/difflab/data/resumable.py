"""A training DataLoader that Lightning checkpoints, so that a run resumed mid-epoch sees the batches it would have.

Lightning saves the state of any loader with state_dict/load_state_dict (its `_Stateful` protocol) and restores it
before the resumed epoch's iterator is made. Without it, a plain DataLoader restarts the interrupted epoch's order
from its first batch while the loop counts on from where it stopped: the first batches are seen twice, the last
ones not at all.
"""

from typing import Callable

from torch.utils.data import DataLoader


class ResumableLoader(DataLoader):
    """A DataLoader over a sampler with set_epoch/epoch (EpochShuffleSampler, or Lightning's distributed wrapper of
    it). state: the sampler's epoch and `trained()`, the batches of it already trained. After load_state_dict the
    next iterator over that epoch starts past them (they are drawn and dropped: cheap for in-memory images)."""

    def __init__(self, *args, trained: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.trained = trained
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict:
        return {"epoch": int(self.sampler.epoch), "batches": int(self.trained())}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.set_epoch(state["epoch"])  # the iterator is made before Lightning sets the epoch again
        self._resume = (state["epoch"], state["batches"])

    def __iter__(self):
        iterator = super().__iter__()
        if self._resume is not None:
            epoch, batches = self._resume
            self._resume = None
            if epoch == self.sampler.epoch:
                for _ in range(min(batches, len(self))):
                    next(iterator)
        return iterator
