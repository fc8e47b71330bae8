"""Evaluation metrics for the trainers: the AudioSet mAP/mAUC/d-prime `evaluate` module (multi-label) and top-1
accuracy (single-label: HEAR reports it on every downstream set)."""
from pathlib import Path

import numpy as np

from ...data.audioset import NUM_STANDARD_CLASSES

# Folder of the `evaluate` module; `evaluate.load(AUDIOSET_MAP_PATH)` works offline.
AUDIOSET_MAP_PATH = str(Path(__file__).parent / "audioset_map")
# Evaluation scores the 527 standard AudioSet classes even when training on 556/557 labels (Sec. 4.1).
NUM_AUDIOSET_CLASSES = NUM_STANDARD_CLASSES


def load_audioset_metric():
    """The AudioSet metric module (mAP, mAUC, d-prime) loaded from the package, no network."""
    import evaluate

    return evaluate.load(AUDIOSET_MAP_PATH)


def audioset_compute_metrics(num_eval_classes: int | None = NUM_AUDIOSET_CLASSES, protocol: str = "present"):
    """A ``compute_metrics`` for ``Trainer``: mAP/mAUC/d-prime over columns ``[:num_eval_classes]``.

    With the default 527 a model trained on the 556-label set is scored on the standard AudioSet
    classes in their standard order (the label sets put them first). ``None`` scores every column.
    ``protocol="present"`` averages over the classes that have a positive; ``"audiomae"`` averages over
    every class as AudioMAE's ``calculate_stats`` does (the protocol of the paper tables; equal on the full
    AudioSet evaluation set, where every class has positives).
    """
    metric = load_audioset_metric()

    def compute_metrics(eval_prediction) -> dict:
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        logits, labels = np.asarray(logits), np.asarray(eval_prediction.label_ids)
        classes = logits.shape[1] if num_eval_classes is None else num_eval_classes
        if logits.shape[1] < classes:
            raise ValueError(
                f"The model predicts {logits.shape[1]} classes but evaluation scores the first {classes}; "
                "pass num_eval_classes=None (or the model's label count) for a non-AudioSet label set."
            )
        return metric.compute(
            predictions=logits[:, :classes], references=labels[:, :classes], protocol=protocol
        )

    return compute_metrics


def compute_accuracy(eval_prediction) -> dict:
    """``compute_metrics`` for ``Trainer``: top-1 accuracy of single-label logits."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    labels = np.asarray(eval_prediction.label_ids).reshape(-1)
    return {"accuracy": float((np.asarray(logits).argmax(-1) == labels).mean())}
