"""AudioMAE's class-balancing weighted sampler for map-style AudioSet training sets."""
import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def audioset_sample_weights(dataset, label_column: str = "labels", batch_size: int = 10_000) -> np.ndarray:
    """Per-clip sampling weights as AudioMAE computes them.

    Class weight ``1000 / (count_c + 0.01)`` from the positive counts over the whole set; a clip's
    weight is the sum of the weights of its labels, so clips of rare classes are drawn more often.

    Args:
        dataset: a ``datasets.Dataset`` with a multi-hot ``label_column`` (read in chunks, so AS-2M fits
            in memory), or an array-like ``[num_clips, num_classes]`` of multi-hot labels.
    """
    if hasattr(dataset, "select_columns"):
        if label_column not in dataset.column_names:
            raise ValueError(
                f"Weighted sampling needs a multi-hot '{label_column}' column; the dataset has {dataset.column_names}."
            )
        chunks = [
            np.asarray(batch[label_column], dtype=np.float32) >= 0.5
            for batch in dataset.select_columns([label_column]).with_format("numpy").iter(batch_size=batch_size)
        ]
        labels = np.concatenate(chunks)
    else:
        labels = np.asarray(dataset, dtype=np.float32) >= 0.5
    if labels.ndim != 2:
        raise ValueError(f"labels must be [num_clips, num_classes] multi-hot, got shape {labels.shape}.")
    class_weight = 1000.0 / (labels.sum(axis=0) + 0.01)
    return labels.astype(np.float64) @ class_weight


class AudiosetWeightedSampler(WeightedRandomSampler):
    """``WeightedRandomSampler`` (with replacement) drawing ``epoch_length`` clips per epoch
    (AudioMAE: 200 000 for AS-2M), reproducible per ``(seed, epoch)``.

    The draw depends only on the seed and the epoch, so every process of a distributed run sees the same
    index sequence (accelerate then gives each process its own slice) and a resumed run skips the
    batches it already trained on.
    """

    def __init__(self, weights, epoch_length: int | None = None, seed: int = 0):
        weights = torch.as_tensor(np.asarray(weights), dtype=torch.double)
        if weights.numel() == 0 or not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("Sampling weights must be finite, non-negative and not all zero (clips without labels?).")
        super().__init__(weights, num_samples=epoch_length or len(weights), replacement=True)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, self.num_samples, True, generator=generator).tolist()
