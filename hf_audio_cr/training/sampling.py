"""AudioMAE's class-balancing weighted sampler for map-style AudioSet training sets."""
import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def _class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    class_weight = 1000.0 / (labels.sum(axis=0) + 0.01)
    return labels.astype(np.float64) @ class_weight


def _with_ancestors(clips: list, label_set: str) -> list:
    """Each clip's MIDs plus their ontology ancestors that belong to ``label_set`` (own labels always kept)."""
    from ..data.audioset import audioset_ancestors, audioset_label_set

    allowed = set(audioset_label_set(label_set))
    return [mids.union(*(audioset_ancestors(m) & allowed for m in mids)) for mids in clips]


def _weights_from_mids(clips: list) -> np.ndarray:
    classes = sorted(set().union(*clips))
    column = {mid: i for i, mid in enumerate(classes)}
    labels = np.zeros((len(clips), len(classes)), dtype=bool)
    for row, mids in enumerate(clips):
        labels[row, [column[m] for m in mids]] = True
    return _class_balanced_weights(labels)


def audioset_sample_weights(
    dataset,
    label_column: str = "labels",
    batch_size: int = 10_000,
    with_ancestors: bool = False,
    label_set: str = "556",
) -> np.ndarray:
    """Per-clip sampling weights as AudioMAE computes them.

    Class weight ``1000 / (count_c + 0.01)`` from the positive counts over the whole set; a clip's
    weight is the sum of the weights of its labels, so clips of rare classes are drawn more often.

    ``with_ancestors=True`` counts and sums each clip's labels together with their ontology ancestors in
    ``label_set`` (standard classes such as Music included), as the CR paper's fork does
    (ModifiedAudioMAE ``dataset/audioset/gen_weight.py`` reads a data file "with parents" and the 556-label
    CSV); it needs MID lists, or multi-hot columns in ``label_set``'s order.

    Args:
        dataset: a ``datasets.Dataset`` (read in chunks without its transforms, so AS-2M fits in memory and
            no audio is decoded) whose ``label_column`` holds multi-hot targets or, as stored by
            ``load_audioset(streaming=False)``, lists of MIDs (then the counts are over the clips' own
            labels, like AudioMAE, and ontology ancestors added for training do not enter); or an
            array-like ``[num_clips, num_classes]`` of multi-hot labels.
    """
    if hasattr(dataset, "select_columns"):
        if label_column not in dataset.column_names:
            raise ValueError(
                f"Weighted sampling needs a '{label_column}' column; the dataset has {dataset.column_names}."
            )
        stored = dataset.with_format(None).select_columns([label_column])  # drop transforms: labels only
        inner = getattr(stored.features[label_column], "feature", None)
        if getattr(inner, "dtype", None) == "string":
            clips = [set(mids) for batch in stored.iter(batch_size=batch_size) for mids in batch[label_column]]
            return _weights_from_mids(_with_ancestors(clips, label_set) if with_ancestors else clips)
        chunks = [
            np.asarray(batch[label_column], dtype=np.float32) >= 0.5
            for batch in stored.with_format("numpy").iter(batch_size=batch_size)
        ]
        labels = np.concatenate(chunks)
    else:
        labels = np.asarray(dataset, dtype=np.float32) >= 0.5
    if labels.ndim != 2:
        raise ValueError(f"labels must be [num_clips, num_classes] multi-hot, got shape {labels.shape}.")
    if with_ancestors:
        from ..data.audioset import audioset_label_set

        mids = audioset_label_set(label_set)
        if labels.shape[1] != len(mids):
            raise ValueError(
                f"with_ancestors needs the clips' MIDs: the labels have {labels.shape[1]} columns, not the "
                f"{len(mids)} of label set {label_set!r}; pass MID lists or multi-hot targets in that label set."
            )
        return _weights_from_mids(_with_ancestors([{mids[c] for c in np.flatnonzero(row)} for row in labels], label_set))
    return _class_balanced_weights(labels)


class AudiosetWeightedSampler(WeightedRandomSampler):
    """``WeightedRandomSampler`` drawing ``epoch_length`` clips per epoch (AudioMAE: 200 000 for AS-2M),
    reproducible per ``(seed, epoch)``. ``replacement=False`` draws distinct clips within an epoch, as
    AudioMAE's AS-2M recipe does (its ``--replacement`` defaults to False).

    The draw depends only on the seed and the epoch, so every process of a distributed run sees the same
    index sequence (accelerate then gives each process its own slice) and a resumed run skips the
    batches it already trained on.
    """

    def __init__(self, weights, epoch_length: int | None = None, seed: int = 0, replacement: bool = True):
        weights = torch.as_tensor(np.asarray(weights), dtype=torch.double)
        if weights.numel() == 0 or not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("Sampling weights must be finite, non-negative and not all zero (clips without labels?).")
        drawable = int((weights > 0).sum())
        if not replacement and (epoch_length or len(weights)) > drawable:
            raise ValueError(
                f"epoch_length={epoch_length or len(weights)} distinct clips cannot be drawn without replacement from "
                f"{drawable} clips with a non-zero weight; lower epoch_length or sample with replacement."
            )
        super().__init__(weights, num_samples=epoch_length or len(weights), replacement=replacement)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, self.num_samples, self.replacement, generator=generator).tolist()
