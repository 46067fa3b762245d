"""How a bin of events reaches the first layer (``TrainConfig.input_encoding``).

- ``"counts"``: the number of events the bin holds (graded input). Under NeuroBench's rules the
  first layer's synaptic operations are then multiply-accumulates, since its input is not binary.
- ``"binary"``: 1 where the bin holds at least one event, else 0, so the first layer only
  accumulates (NeuroBench's rules and an event-driven chip alike: a bin delivers one event). The
  count is lost: what that costs in accuracy is measured in benchmarks/RESULTS.md.

The encoding is applied to every split a run reads (:func:`encoded`), and again after training
augmentation, which moves counts and may merge two pixels into one bin.
"""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

INPUT_ENCODINGS = ("counts", "binary")


def encode_frames(x: Tensor, encoding: str, *, in_place: bool = False) -> Tensor:
    """Frames ``[..., features]`` of event counts in ``encoding`` (module docstring); ``x`` is
    modified only ``in_place`` (a batch of the caller's own: no second batch is made, which for
    N-MNIST's training batches costs more than the comparison, 3 of 4 ms)."""
    if encoding == "counts":
        return x
    if encoding == "binary":
        return x.gt_(0) if in_place else (x > 0).to(x.dtype)
    raise ValueError(f"expected an input encoding among {INPUT_ENCODINGS}; got {encoding!r}")


class EncodedFrames(Dataset):
    """A dataset of ``(frames, label)`` whose frames are given in ``encoding``."""

    def __init__(self, dataset: Dataset, encoding: str) -> None:
        encode_frames(Tensor(), encoding)  # a wrong name fails here, not at the first item
        self.dataset, self.encoding = dataset, encoding

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return encode_frames(x, self.encoding), y


def encoded(dataset: Dataset, encoding: str) -> Dataset:
    """``dataset`` itself for ``"counts"``, else its frames in ``encoding``."""
    return dataset if encoding == "counts" else EncodedFrames(dataset, encoding)
