"""AudioSet multi-label metrics: mAP, mAUC and d-prime, as an `evaluate` module.

Load it offline with ``evaluate.load(hf_audio_cr.training.metrics.AUDIOSET_MAP_PATH)``.
"""
# `evaluate` reads this module's dependencies from its import lines: keep one import per line.
import math
from statistics import NormalDist

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

_DESCRIPTION = """
Macro mean average precision (mAP) over the classes that have at least one positive reference, the
mean ROC AUC (mAUC) over the classes that have both positives and negatives, and d-prime
``sqrt(2) * Phi^-1(mAUC)`` (AudioSet's standard metrics, as reported by AudioMAE and CR-AudioMAE).
Predictions are scores (logits or probabilities: every metric is rank-based per class); references are
multi-hot targets, thresholded at 0.5. ``num_eval_classes`` scores only the first columns, e.g. 527 when
a model is trained on 556 labels (527 AudioSet classes first, then ontology ancestors).

``protocol="audiomae"`` reproduces AudioMAE's ``util/stat.py`` ``calculate_stats`` (used by the CR paper's
fork for its tables): the mean over every column, a class without a positive counting as AP 0 (what
scikit-learn returns for it), and the mAUC over every column too, so it is NaN when some class has only one
target value (scikit-learn's ``roc_auc_score`` is undefined there). On the full AudioSet evaluation set every
class has positives and negatives and both protocols give the same numbers; they differ on subsets.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: ``[num_clips, num_classes]`` scores.
    references: ``[num_clips, num_classes]`` multi-hot targets.
    num_eval_classes: score only columns ``[:num_eval_classes]`` (default: all).
    protocol: ``"present"`` (default: classes with a positive) or ``"audiomae"`` (every class, as
        AudioMAE's ``calculate_stats``).
Returns:
    mAP, mAUC, d_prime, num_scored_classes.
Example:
    >>> metric = evaluate.load(AUDIOSET_MAP_PATH)
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])["mAP"]
    1.0
"""


PROTOCOLS = ("present", "audiomae")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AudiosetMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("float32")),
                }
            ),
        )

    def _compute(self, predictions, references, num_eval_classes=None, protocol="present"):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
        scores = np.asarray(predictions, dtype=np.float64)
        targets = np.asarray(references, dtype=np.float64) >= 0.5
        if scores.shape != targets.shape or scores.ndim != 2:
            raise ValueError(
                f"predictions {scores.shape} and references {targets.shape} must both be [num_clips, num_classes]."
            )
        if num_eval_classes is not None:
            if num_eval_classes > scores.shape[1]:
                raise ValueError(f"num_eval_classes={num_eval_classes} exceeds the {scores.shape[1]} columns given.")
            scores, targets = scores[:, :num_eval_classes], targets[:, :num_eval_classes]
        positives = targets.sum(axis=0)
        has_positive = positives > 0
        if not has_positive.any():
            raise ValueError("No class has a positive reference: mAP is undefined for these references.")
        both = has_positive & (positives < targets.shape[0])
        if protocol == "audiomae":  # every column: AP 0 without a positive, AUC undefined with one target value
            ap = [average_precision_score(targets[:, c], scores[:, c]) if has_positive[c] else 0.0 for c in range(targets.shape[1])]
            auc = [roc_auc_score(targets[:, c], scores[:, c]) if both[c] else float("nan") for c in range(targets.shape[1])]
            scored = targets.shape[1]
        else:
            ap = [average_precision_score(targets[:, c], scores[:, c]) for c in np.flatnonzero(has_positive)]
            auc = [roc_auc_score(targets[:, c], scores[:, c]) for c in np.flatnonzero(both)]
            scored = int(has_positive.sum())
        mauc = float(np.mean(auc)) if auc else float("nan")
        # d' = sqrt(2) * inverse normal CDF of the AUC (AudioSet's convention); infinite at AUC 1.
        if math.isnan(mauc):
            d_prime = float("nan")
        elif 0.0 < mauc < 1.0:
            d_prime = math.sqrt(2.0) * NormalDist().inv_cdf(mauc)
        else:
            d_prime = math.copysign(float("inf"), mauc - 0.5)
        return {"mAP": float(np.mean(ap)), "mAUC": mauc, "d_prime": d_prime, "num_scored_classes": scored}
