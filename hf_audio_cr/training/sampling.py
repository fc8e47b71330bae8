"""AudioMAE's class-balancing weighted sampler: map-style AudioSet training sets (``AudiosetWeightedSampler``)
and streams (``AudiosetWeightedStream``, class counts from one pass over the labels column)."""
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, WeightedRandomSampler


def _class_weight(counts):
    """AudioMAE's ``gen_weight.py``: class weight ``1000 / (count + 0.01)``."""
    return 1000.0 / (counts + 0.01)


def _class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.float64) @ _class_weight(labels.sum(axis=0))


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


@dataclass
class StreamClassWeights:
    """Class weights of a stream from one pass over its labels: ``weight[mid] = 1000 / (count + 0.01)``; a clip's
    weight is the sum over its MIDs (with their ancestors in ``label_set`` when ``with_ancestors``), exactly the
    per-clip weight :func:`audioset_sample_weights` gives a map-style copy of the same clips. ``total_weight`` is
    the sum of all clips' weights (= sum over classes of count x weight), so a clip's share is known without
    holding one number per clip."""

    class_weight: dict
    total_weight: float
    num_clips: int
    with_ancestors: bool = False
    label_set: str = "556"

    def clip_mids(self, mids) -> set:
        clip = set(mids or ())
        return _with_ancestors([clip], self.label_set)[0] if self.with_ancestors else clip

    def clip_weight(self, mids) -> float:
        return float(sum(self.class_weight.get(mid, 0.0) for mid in self.clip_mids(mids)))


def stream_class_weights(
    label_batches, with_ancestors: bool = False, label_set: str = "556", label_column: str = "labels"
) -> StreamClassWeights:
    """One pass over a stream's labels (batches ``{label_column: [[MID, ...], ...]}``, e.g. from
    :func:`hf_audio_cr.data.audioset.load_audioset_labels`, which reads the parquet labels column only) ->
    :class:`StreamClassWeights`. Memory: one counter per class, whatever the number of clips."""
    counts, num_clips = Counter(), 0
    for batch in label_batches:
        clips = [set(mids or ()) for mids in batch[label_column]]
        if clips and any(isinstance(m, (int, float)) for clip in clips[:1] for m in clip):
            raise ValueError(
                f"stream_class_weights: '{label_column}' must hold lists of MIDs (AudioSet's parquet schema), got "
                f"numbers {sorted(clips[0])[:5]}; stream the raw parquet labels column."
            )
        for clip in _with_ancestors(clips, label_set) if with_ancestors else clips:
            counts.update(clip)
        num_clips += len(clips)
    if not counts:
        raise ValueError("stream_class_weights: the stream has no labelled clip; weighted sampling needs labels.")
    class_weight = {mid: float(_class_weight(count)) for mid, count in counts.items()}
    total = float(sum(counts[mid] * weight for mid, weight in class_weight.items()))
    return StreamClassWeights(class_weight, total, num_clips, with_ancestors, str(label_set))


class AudiosetWeightedStream(IterableDataset):
    """AudioMAE's weighted sampler on a stream: each clip of the stream is emitted ``K`` times per epoch with
    ``K ~ Poisson(epoch_length * w / W)`` (``replacement=True``) or ``Bernoulli(min(1, epoch_length * w / W))``
    (``replacement=False``: distinct clips), ``w`` the clip's weight and ``W`` the set's total from
    :func:`stream_class_weights`. With replacement each clip's expected number of draws is exactly the map-style
    sampler's (``epoch_length`` multinomial draws with probability ``w / W``), and the epoch has
    ``epoch_length`` clips on average. Copies go through a shuffle buffer of ``buffer_size`` rows so a rare clip's
    repeats are spread over batches. Memory: the buffer, never an index of the set.

    The draws depend on ``(seed, epoch, DataLoader worker)`` and the stream's own order only (``set_epoch`` is
    forwarded to the inner ``datasets.IterableDataset``), so every process draws the same sequence: under
    ``Trainer`` accelerate dispatches slices of it from the main process (the default for iterable datasets) or,
    with ``dispatch_batches=False``, wraps it in ``IterableDatasetShard`` so each process keeps its own slice of
    every global batch. Rows need their original MIDs in ``label_column`` (``load_audioset`` rows keep them in
    ``label_mids``).
    """

    def __init__(self, dataset, class_weights: StreamClassWeights, epoch_length: int | None = None, seed: int = 0,
                 replacement: bool = True, buffer_size: int = 1000, label_column: str = "label_mids"):
        if class_weights.total_weight <= 0:
            raise ValueError("AudiosetWeightedStream: the class weights sum to 0 (clips without labels?).")
        self.dataset, self.class_weights = dataset, class_weights
        self.epoch_length = int(epoch_length or class_weights.num_clips)
        self.seed, self.replacement = int(seed), replacement
        self.buffer_size, self.label_column = max(1, int(buffer_size)), label_column
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def _copies(self, rng):
        scale = self.epoch_length / self.class_weights.total_weight
        for row in self.dataset:
            if self.label_column not in row:
                raise ValueError(
                    f"AudiosetWeightedStream: rows need the clips' MIDs in '{self.label_column}', got columns "
                    f"{sorted(row)}; stream the set with load_audioset (it keeps them in 'label_mids')."
                )
            rate = scale * self.class_weights.clip_weight(row[self.label_column])
            copies = rng.poisson(rate) if self.replacement else int(rng.random() < rate)
            for _ in range(copies):
                yield dict(row)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        # a datasets.IterableDataset shares its epoch with persistent workers; our own attribute is the fallback
        epoch = int(getattr(self.dataset, "epoch", self.epoch))
        rng = np.random.default_rng([self.seed, epoch, info.id if info is not None else 0])
        buffer = []
        for row in self._copies(rng):
            if len(buffer) < self.buffer_size:
                buffer.append(row)
                continue
            i = int(rng.integers(self.buffer_size))
            yield buffer[i]
            buffer[i] = row
        rng.shuffle(buffer)
        yield from buffer
