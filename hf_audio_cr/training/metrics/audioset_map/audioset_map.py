"""AudioSet multi-label metrics: mAP, mAUC and d-prime, as an `evaluate` module.

Load it offline with ``evaluate.load(hf_audio_cr.training.metrics.AUDIOSET_MAP_PATH)``.
"""
# `evaluate` reads this module's dependencies from its import lines: keep one import per line.
import math
from statistics import NormalDist

import datasets
import evaluate
import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.metrics import roc_auc_score

_DESCRIPTION = """
Macro mean average precision (mAP) over the classes that have at least one positive reference, the
mean ROC AUC (mAUC) over the classes that have both positives and negatives, and d-prime
``sqrt(2) * Phi^-1(mAUC)`` (AudioSet's standard metrics, as reported by AudioMAE and CR-AudioMAE).
Predictions are scores (logits or probabilities: every metric is rank-based per class); references are
multi-hot targets, thresholded at 0.5. ``num_eval_classes`` scores only the first columns, e.g. 527 when
a model is trained on 556 labels (527 AudioSet classes first, then ontology ancestors).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: ``[num_clips, num_classes]`` scores.
    references: ``[num_clips, num_classes]`` multi-hot targets.
    num_eval_classes: score only columns ``[:num_eval_classes]`` (default: all).
Returns:
    mAP, mAUC, d_prime, num_scored_classes.
Example:
    >>> metric = evaluate.load(AUDIOSET_MAP_PATH)
    >>> metric.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])["mAP"]
    1.0
"""


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

    def _compute(self, predictions, references, num_eval_classes=None):
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
        ap = [average_precision_score(targets[:, c], scores[:, c]) for c in np.flatnonzero(has_positive)]
        both = has_positive & (positives < targets.shape[0])
        auc = [roc_auc_score(targets[:, c], scores[:, c]) for c in np.flatnonzero(both)]
        mauc = float(np.mean(auc)) if auc else float("nan")
        # d' = sqrt(2) * inverse normal CDF of the AUC (AudioSet's convention); infinite at AUC 1.
        if math.isnan(mauc):
            d_prime = float("nan")
        elif 0.0 < mauc < 1.0:
            d_prime = math.sqrt(2.0) * NormalDist().inv_cdf(mauc)
        else:
            d_prime = math.copysign(float("inf"), mauc - 0.5)
        return {"mAP": float(np.mean(ap)), "mAUC": mauc, "d_prime": d_prime, "num_scored_classes": int(has_positive.sum())}
